/**
 * Decode-once cache for small file-based datasets: every image is decoded and resized (shorter
 * side to `shorter`) once, kept in memory, and from then on augmented by the engine's JS
 * crop/resize path. Trades the exact torchvision pipeline (RandomResizedCrop on the original
 * pixels) for a pipeline that decodes each JPEG once instead of once per epoch.
 */
import sharp from 'sharp';
import type { RawImage } from '@refconv/engine';
import type { Split } from './dataset.js';
import type { BadImage } from './loader.js';

/** Decodes every image of `split` to a RawImage with shorter side `shorter`. */
export async function cacheSplit(split: Split, shorter: number, channels: 1 | 3, opts: { skipBad: boolean; bad: BadImage[] }): Promise<Split> {
  const images: RawImage[] = [];
  const kept: number[] = [];
  const concurrency = 4;
  const load = async (i: number): Promise<RawImage | undefined> => {
    const src = split.source(i);
    if (typeof src !== 'string') return src;
    try {
      let p = sharp(src, { failOn: 'truncated' }).resize(shorter, shorter, { fit: 'outside', kernel: 'linear' });
      p = channels === 1 ? p.greyscale() : p.removeAlpha().toColourspace('srgb');
      const { data, info } = await p.raw().toBuffer({ resolveWithObject: true });
      if (info.channels !== channels) throw new Error(`decoded to ${info.channels} channels, expected ${channels}`);
      return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, channels };
    } catch (e) {
      const error = `cannot decode image ${src}: ${(e as Error).message}`;
      if (!opts.skipBad) throw new Error(`${error}\n(pass --skip-bad-images to leave unreadable images out and count them in the report)`);
      opts.bad.push({ file: src, error });
      return undefined;
    }
  };
  for (let start = 0; start < split.size; start += concurrency) {
    const idx = Array.from({ length: Math.min(concurrency, split.size - start) }, (_, k) => start + k);
    const got = await Promise.all(idx.map(load));
    got.forEach((img, k) => {
      if (img) {
        images.push(img);
        kept.push(idx[k]!);
      }
    });
  }
  return {
    size: images.length,
    source: (i) => images[i]!,
    label: (i) => split.label(kept[i]!),
    describe: (i) => `${split.describe(kept[i]!)} (cached at shorter side ${shorter})`,
  };
}
