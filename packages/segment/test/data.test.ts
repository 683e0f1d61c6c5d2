import { sharedDataset } from '@refconv/engine';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { CITYSCAPES_LABELS, labelTable, listSamples, vocColourMap } from '../src/data/datasets.js';
import { loadSample, mapLabels, readMask } from '../src/data/io.js';
import { decodeIndexPng, readIndexPng } from '../src/data/png.js';
import { resizeNearest, seededRandom, trainAugment } from '../src/data/transforms.js';

const fx = (p: string) => new URL(`./fixtures/${p}`, import.meta.url).pathname;
const expected = JSON.parse(readFileSync(fx('png/expected.json'), 'utf8')) as Record<string, { width: number; height: number; data: number[] }>;

async function writeGreyPng(path: string, w: number, h: number, values: number[]): Promise<void> {
  await sharp(Buffer.from(values), { raw: { width: w, height: h, channels: 1 } }).toColourspace('b-w').png().toFile(path);
}
async function writeRgbPng(path: string, w: number, h: number): Promise<void> {
  await sharp({ create: { width: w, height: h, channels: 3, background: { r: 10, g: 20, b: 30 } } }).png().toFile(path);
}

describe('index PNG decoder vs Pillow-written fixtures', () => {
  for (const name of ['p8', 'p4', 'l8']) {
    it(`${name}.png decodes to the stored indices`, () => {
      const m = readIndexPng(fx(`png/${name}.png`));
      expect([m.width, m.height]).toEqual([expected[name]!.width, expected[name]!.height]);
      expect(Array.from(m.data)).toEqual(expected[name]!.data);
    });
  }
  it('rejects RGB, truncated and non-PNG input naming the source', async () => {
    const rgb = await sharp({ create: { width: 4, height: 3, channels: 3, background: 'red' } }).png().toBuffer();
    expect(() => decodeIndexPng(rgb, 'x.png')).toThrow(/x\.png: .*palette or greyscale.*RGB/);
    const good = readFileSync(fx('png/p8.png'));
    expect(() => decodeIndexPng(good.subarray(0, 60), 'cut.png')).toThrow(/cut\.png: truncated/);
    expect(() => decodeIndexPng(Buffer.from('hello world'), 'txt.png')).toThrow(/txt\.png: not a PNG/);
    expect(() => readIndexPng('/nonexistent/m.png')).toThrow(/cannot read mask \/nonexistent\/m\.png/);
  });
});

describe('label tables', () => {
  it('Cityscapes labelIds -> trainIds follows the official table', () => {
    const t = labelTable('cityscapes-labelIds');
    // spot checks written from cityscapesScripts labels.py
    expect([t[7], t[8], t[11], t[23], t[24], t[26], t[31], t[33]]).toEqual([0, 1, 2, 10, 11, 13, 16, 18]);
    expect([t[0], t[1], t[6], t[9], t[14], t[29], t[30]]).toEqual([255, 255, 255, 255, 255, 255, 255]);
    expect(CITYSCAPES_LABELS.filter((l) => l[2] !== 255).length).toBe(19);
    expect(t[34]).toBe(-1);
  });
  it('CamVid maps void 11 to ignore and rejects 12, naming the file', () => {
    expect(Array.from(mapLabels(new Uint8Array([0, 10, 11]), 'camvid', 'a.png'))).toEqual([0, 10, 255]);
    expect(() => mapLabels(new Uint8Array([3, 12]), 'camvid', 'bad.png')).toThrow(/bad\.png: pixel 1 holds class id 12, outside the camvid range 0\.\.10/);
  });
  it('VOC palette colours match the devkit colour map', () => {
    const p = vocColourMap(256);
    expect(p[0]).toEqual([0, 0, 0]);
    expect(p[1]).toEqual([128, 0, 0]);
    expect(p[15]).toEqual([192, 128, 128]);
    expect(p[255]).toEqual([224, 224, 192]);
  });
});

describe('dataset layouts', () => {
  it('VOC: split list, JPEGImages, palette SegmentationClass; out-of-range ids error with the file', async () => {
    const root = mkdtempSync(join(tmpdir(), 'voc-'));
    const base = join(root, 'VOCdevkit', 'VOC2012');
    for (const d of ['JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation']) mkdirSync(join(base, d), { recursive: true });
    writeFileSync(join(base, 'ImageSets/Segmentation/val.txt'), '2007_000033\n');
    await sharp({ create: { width: 19, height: 13, channels: 3, background: 'blue' } }).jpeg().toFile(join(base, 'JPEGImages/2007_000033.jpg'));
    copyFileSync(fx('png/p8.png'), join(base, 'SegmentationClass/2007_000033.png'));
    const samples = listSamples('voc', root, { split: 'val' });
    expect(samples).toHaveLength(1);
    const s = await loadSample(samples[0]!);
    expect(Array.from(s.mask.data)).toEqual(expected.p8!.data);
    expect(() => listSamples('voc', root, { split: 'train' })).toThrow(/train\.txt not found/);
    // a Cityscapes-range mask (ids up to 33) is not a VOC mask
    expect(() => readMask(fx('png/l8.png'), 'voc')).toThrow(/l8\.png: pixel \d+ holds class id (2[1-9]|3\d), outside the voc range 0\.\.20/);
  });

  it('Cityscapes: prefers labelTrainIds, else maps labelIds; a missing mask names the image', async () => {
    const root = mkdtempSync(join(tmpdir(), 'cs-'));
    for (const d of ['leftImg8bit/val/aachen', 'gtFine/val/aachen']) mkdirSync(join(root, d), { recursive: true });
    await writeRgbPng(join(root, 'leftImg8bit/val/aachen/a_000000_000019_leftImg8bit.png'), 4, 2);
    await writeRgbPng(join(root, 'leftImg8bit/val/aachen/a_000000_000020_leftImg8bit.png'), 4, 2);
    await writeGreyPng(join(root, 'gtFine/val/aachen/a_000000_000019_gtFine_labelIds.png'), 4, 2, [7, 8, 0, 33, 26, 23, 9, 24]);
    await writeGreyPng(join(root, 'gtFine/val/aachen/a_000000_000020_gtFine_labelTrainIds.png'), 4, 2, [0, 1, 255, 18, 13, 10, 255, 11]);
    const samples = listSamples('cityscapes', root, { split: 'val' });
    expect(samples.map((s) => s.maskKind)).toEqual(['cityscapes-labelIds', 'cityscapes-trainIds']);
    const [a, b] = await Promise.all(samples.map(loadSample));
    expect(Array.from(a!.mask.data)).toEqual([0, 1, 255, 18, 13, 10, 255, 11]);
    expect(Array.from(b!.mask.data)).toEqual([0, 1, 255, 18, 13, 10, 255, 11]);
    await writeRgbPng(join(root, 'leftImg8bit/val/aachen/a_000000_000021_leftImg8bit.png'), 4, 2);
    expect(() => listSamples('cityscapes', root, { split: 'val' })).toThrow(/a_000000_000021_leftImg8bit\.png has no mask/);
  });

  it('CamVid: resolves the last two parts of list paths; size mismatch names both files', async () => {
    const root = mkdtempSync(join(tmpdir(), 'camvid-'));
    for (const d of ['val', 'valannot']) mkdirSync(join(root, d));
    writeFileSync(join(root, 'val.txt'), '/SegNet/CamVid/val/f1.png /SegNet/CamVid/valannot/f1.png\n/SegNet/CamVid/val/f2.png /SegNet/CamVid/valannot/f2.png\n');
    await writeRgbPng(join(root, 'val/f1.png'), 3, 2);
    await writeGreyPng(join(root, 'valannot/f1.png'), 3, 2, [0, 11, 10, 3, 3, 11]);
    await writeRgbPng(join(root, 'val/f2.png'), 3, 2);
    await writeGreyPng(join(root, 'valannot/f2.png'), 2, 2, [0, 1, 2, 3]);
    // opening the split checks every pair: the size mismatch is found here, naming both files
    expect(() => listSamples('camvid', root, { split: 'val' })).toThrow(
      `camvid split 'val' under ${root}: 1 problem(s) found when the split was opened:\n  - mask ${join(root, 'valannot/f2.png')} is 2x2 but its image ${join(root, 'val/f2.png')} is 3x2`,
    );
    const samples = listSamples('camvid', root, { split: 'val', validate: false });
    expect(samples[0]).toMatchObject({ id: 'f1', image: join(root, 'val/f1.png'), mask: join(root, 'valannot/f1.png') });
    expect(Array.from((await loadSample(samples[0]!)).mask.data)).toEqual([0, 255, 10, 3, 3, 255]);
    await expect(loadSample(samples[1]!)).rejects.toThrow(/mask .*valannot\/f2\.png is 2x2 but its image .*val\/f2\.png is 3x2/);
  });

  it('the real CamVid copy has 367 train / 101 val pairs, all valid', () => {
    const root = sharedDataset('camvid');
    expect(listSamples('camvid', root, { split: 'train' })).toHaveLength(367);
    expect(listSamples('camvid', root, { split: 'val' })).toHaveLength(101);
  });
});

describe('augmentation', () => {
  it('nearest resize picks floor(dst * in / out) like PyTorch', () => {
    const m = { width: 3, height: 2, data: new Uint8Array([1, 2, 3, 4, 5, 6]) };
    // upsample 3 -> 6 wide, 2 -> 4 high: each source pixel repeated twice
    expect(Array.from(resizeNearest(m, 6, 4).data)).toEqual([1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6]);
    // downsample 3 -> 2: x=0 -> 0, x=1 -> floor(1.5) = 1
    expect(Array.from(resizeNearest(m, 2, 1).data)).toEqual([1, 2]);
  });

  it('keeps only labels that exist, pads with ignore, flips image and mask together', async () => {
    // image whose red channel encodes the column, mask = column index (0..9), 10x6
    const w = 10;
    const h = 6;
    const img = new Uint8Array(w * h * 3);
    const mask = new Uint8Array(w * h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      img[(y * w + x) * 3] = x * 25;
      mask[y * w + x] = x;
    }
    const mean = [0, 0, 0];
    const std = [1, 1, 1];
    let sawPad = false;
    let sawFlip = false;
    const rand = seededRandom(3);
    for (let k = 0; k < 20; k++) {
      const ex = await trainAugment({ width: w, height: h, data: img }, { width: w, height: h, data: mask }, { cropSize: [8, 12], mean, std }, rand);
      expect(ex.image.length).toBe(8 * 12 * 3);
      for (let i = 0; i < ex.mask.length; i++) {
        const v = ex.mask[i]!;
        expect(v === 255 || v < 10).toBe(true);
        if (v === 255) {
          sawPad = true;
          expect(ex.image[i * 3]).toBe(0); // padded image pixels are 0 before normalisation
        }
      }
      // labels along a row must be monotone in x: increasing (no flip) or decreasing (flipped)
      const row = Array.from(ex.mask.subarray(0, 12)).filter((v) => v !== 255);
      const inc = row.every((v, i) => i === 0 || v >= row[i - 1]!);
      const dec = row.every((v, i) => i === 0 || v <= row[i - 1]!);
      expect(inc || dec).toBe(true);
      if (dec && !inc) sawFlip = true;
    }
    expect(sawPad).toBe(true);
    expect(sawFlip).toBe(true);
  });
});
