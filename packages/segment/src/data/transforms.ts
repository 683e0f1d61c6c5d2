/**
 * Training augmentation and evaluation preprocessing, as in the torchvision segmentation
 * references: random scale (0.5-2.0), pad with the ignore label, random crop, horizontal
 * flip, ImageNet normalisation. Images are resized bilinearly with sharp; label maps only
 * ever with nearest neighbour (in JS, PyTorch `F.interpolate(mode='nearest')` indexing).
 */
import sharp from 'sharp';
import { IGNORE_INDEX } from './datasets.js';
import type { RgbImage } from './io.js';
import { Rng } from '@refconv/engine';
import type { IndexMap } from './png.js';

/** A deterministic uniform [0, 1) generator (engine's seeded `Rng`), so augmentation is reproducible. */
export function seededRandom(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.random();
}

/** Nearest-neighbour resize of a label map: source index `floor(dst * in / out)`. */
export function resizeNearest(map: IndexMap, width: number, height: number): IndexMap {
  const out = new Uint8Array(width * height);
  const sx = map.width / width;
  const sy = map.height / height;
  for (let y = 0; y < height; y++) {
    const srcY = Math.min(Math.floor(y * sy), map.height - 1);
    for (let x = 0; x < width; x++) {
      const srcX = Math.min(Math.floor(x * sx), map.width - 1);
      out[y * width + x] = map.data[srcY * map.width + srcX]!;
    }
  }
  return { width, height, data: out };
}

/** Bilinear resize of an RGB image with sharp. */
export async function resizeRgb(img: RgbImage, width: number, height: number): Promise<RgbImage> {
  if (width === img.width && height === img.height) return img;
  const data = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { kernel: 'linear', fit: 'fill' })
    .raw()
    .toBuffer();
  return { width, height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** Normalises RGB bytes to `(x / 255 - mean) / std`, `[h * w * 3]` float32 (NHWC). */
export function normalise(img: RgbImage, mean: readonly number[], std: readonly number[]): Float32Array {
  const out = new Float32Array(img.data.length);
  for (let i = 0; i < img.data.length; i++) {
    const c = i % 3;
    out[i] = (img.data[i]! / 255 - mean[c]!) / std[c]!;
  }
  return out;
}

/** Training augmentation settings. */
export interface TrainAugmentOptions {
  /** Output crop `[height, width]`. */
  cropSize: [number, number];
  /** Size multiplier applied before the random scale (e.g. 0.5 trains at half resolution). */
  baseScale?: number;
  /** Random scale range (default [0.5, 2.0]). */
  scaleRange?: [number, number];
  /** Horizontal flip with probability 0.5 (default true). */
  flip?: boolean;
  mean: readonly number[];
  std: readonly number[];
}

/** One augmented training example. */
export interface TrainExample {
  /** `[cropH * cropW * 3]` normalised float32. */
  image: Float32Array;
  /** `[cropH * cropW]` train ids / 255. */
  mask: Uint8Array;
}

/** Random scale, pad (image 0 before normalisation = black, mask 255), random crop, flip, normalise. */
export async function trainAugment(image: RgbImage, mask: IndexMap, opts: TrainAugmentOptions, rand: () => number): Promise<TrainExample> {
  const [lo, hi] = opts.scaleRange ?? [0.5, 2.0];
  const s = (opts.baseScale ?? 1) * (lo + (hi - lo) * rand());
  const w = Math.max(1, Math.round(image.width * s));
  const h = Math.max(1, Math.round(image.height * s));
  const img = await resizeRgb(image, w, h);
  const lab = resizeNearest(mask, w, h);
  const [ch, cw] = opts.cropSize;
  const top = h > ch ? Math.floor(rand() * (h - ch + 1)) : 0;
  const left = w > cw ? Math.floor(rand() * (w - cw + 1)) : 0;
  const flip = (opts.flip ?? true) && rand() < 0.5;
  const cropImg = new Uint8Array(ch * cw * 3);
  const cropLab = new Uint8Array(ch * cw).fill(IGNORE_INDEX);
  for (let y = 0; y < ch; y++) {
    const sy = top + y;
    if (sy >= h) break;
    for (let x = 0; x < cw; x++) {
      const sx = left + x;
      if (sx >= w) break;
      const dx = flip ? cw - 1 - x : x;
      cropLab[y * cw + dx] = lab.data[sy * w + sx]!;
      for (let c = 0; c < 3; c++) cropImg[(y * cw + dx) * 3 + c] = img.data[(sy * w + sx) * 3 + c]!;
    }
  }
  // padded pixels: image 0 bytes (as torchvision pads before normalising), mask 255
  return { image: normalise({ width: cw, height: ch, data: cropImg }, opts.mean, opts.std), mask: cropLab };
}
