/**
 * Issue 15: every split (the validation split included) is checked when it is opened, before
 * training, not when it is evaluated. Fixtures are written by the test into a temp dir.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { SegDatasetError, imageSizeFromHeader, listSamples } from '../src/data/datasets.js';

const fx = (p: string) => new URL(`./fixtures/${p}`, import.meta.url).pathname;

async function greyPng(path: string, w: number, h: number, values: number[]): Promise<void> {
  await sharp(Buffer.from(values), { raw: { width: w, height: h, channels: 1 } }).toColourspace('b-w').png().toFile(path);
}
async function rgb(path: string, w: number, h: number, kind: 'png' | 'jpeg'): Promise<void> {
  const img = sharp({ create: { width: w, height: h, channels: 3, background: { r: 10, g: 20, b: 30 } } });
  await (kind === 'png' ? img.png() : img.jpeg()).toFile(path);
}

/** A CamVid root with a clean train split and the given val pairs. */
async function camvid(val: { id: string; image?: [number, number]; mask?: [number, number, number[]] | 'truncated' }[]): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'camvid-open-'));
  for (const d of ['train', 'trainannot', 'val', 'valannot']) mkdirSync(join(root, d));
  await rgb(join(root, 'train/t1.png'), 3, 2, 'png');
  await greyPng(join(root, 'trainannot/t1.png'), 3, 2, [0, 1, 2, 3, 4, 11]);
  writeFileSync(join(root, 'train.txt'), '/SegNet/CamVid/train/t1.png /SegNet/CamVid/trainannot/t1.png\n');
  for (const v of val) {
    if (v.image) await rgb(join(root, `val/${v.id}.png`), v.image[0], v.image[1], 'png');
    if (v.mask === 'truncated') writeFileSync(join(root, `valannot/${v.id}.png`), readFileSync(fx('png/l8.png')).subarray(0, 60));
    else if (v.mask) await greyPng(join(root, `valannot/${v.id}.png`), v.mask[0], v.mask[1], v.mask[2]);
  }
  writeFileSync(join(root, 'val.txt'), val.map((v) => `/SegNet/CamVid/val/${v.id}.png /SegNet/CamVid/valannot/${v.id}.png`).join('\n') + '\n');
  return root;
}

describe('opening a split checks every image / mask pair', () => {
  it('a validation mask with an out-of-range class id fails when the split is opened, naming file, pixel and value', async () => {
    const root = await camvid([
      { id: 'v1', image: [3, 2], mask: [3, 2, [0, 1, 2, 3, 4, 5]] },
      { id: 'v2', image: [3, 2], mask: [3, 2, [0, 1, 2, 3, 12, 5]] },
    ]);
    expect(listSamples('camvid', root, { split: 'train' })).toHaveLength(1);
    let err: unknown;
    try {
      listSamples('camvid', root, { split: 'val' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SegDatasetError);
    expect((err as SegDatasetError).problems).toEqual([
      `${join(root, 'valannot/v2.png')}: pixel 4 holds class id 12, outside the camvid range 0..10 (values read as ignore: 11, 255)`,
    ]);
  });

  it('every problem of the split in one error: missing image, missing mask, truncated mask, size mismatch', async () => {
    const root = await camvid([
      { id: 'ok', image: [3, 2], mask: [3, 2, [0, 1, 2, 3, 4, 5]] },
      { id: 'noimage', mask: [3, 2, [0, 1, 2, 3, 4, 5]] },
      { id: 'nomask', image: [3, 2] },
      { id: 'cut', image: [3, 2], mask: 'truncated' },
      { id: 'small', image: [4, 2], mask: [3, 2, [0, 1, 2, 3, 4, 5]] },
    ]);
    const v = (d: string, id: string) => join(root, d, `${id}.png`);
    let err: SegDatasetError | undefined;
    try {
      listSamples('camvid', root, { split: 'val' });
    } catch (e) {
      err = e as SegDatasetError;
    }
    expect(err?.problems).toEqual([
      `image ${v('val', 'noimage')} does not exist`,
      `mask ${v('valannot', 'nomask')} (of image ${v('val', 'nomask')}) does not exist`,
      `${v('valannot', 'cut')}: truncated PNG (chunk IDAT runs past the end)`,
      `mask ${v('valannot', 'small')} is 3x2 but its image ${v('val', 'small')} is 4x2`,
    ]);
    expect(err?.message.split('\n')[0]).toBe(`camvid split 'val' under ${root}: 4 problem(s) found when the split was opened:`);
    // listing alone (validate: false) still works, for tools that check later themselves
    expect(listSamples('camvid', root, { split: 'val', validate: false })).toHaveLength(5);
  });

  it('image sizes come from PNG and JPEG headers (as sharp reads them); a cut JPEG is named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imgsize-'));
    await rgb(join(dir, 'a.png'), 7, 5, 'png');
    await rgb(join(dir, 'b.jpg'), 9, 4, 'jpeg');
    expect(imageSizeFromHeader(join(dir, 'a.png'))).toEqual({ width: 7, height: 5 });
    expect(imageSizeFromHeader(join(dir, 'b.jpg'))).toEqual({ width: 9, height: 4 });
    writeFileSync(join(dir, 'c.jpg'), readFileSync(join(dir, 'b.jpg')).subarray(0, 20));
    expect(() => imageSizeFromHeader(join(dir, 'c.jpg'))).toThrow(`image ${join(dir, 'c.jpg')}: JPEG ends before its frame header (truncated?)`);
  });
});
