import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage, evalTransform, normalize, randomResizedCropBox, trainTransform } from '../src/image.js';
import { Rng } from '../src/rng.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-img-'));

/** W x H RGB image whose pixel (x, y) is (x, y, (x + y) % 256). */
function pattern(w: number, h: number): Uint8Array {
  const d = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) d.set([x, y, (x + y) % 256], (y * w + x) * 3);
  return d;
}

async function writePng(name: string, w: number, h: number): Promise<string> {
  const file = path.join(dir, name);
  await sharp(pattern(w, h), { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
  return file;
}

const ident = { mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255] }; // normalize to the raw 0..255 values

describe('image decoding', () => {
  it('decodes PNG pixels exactly', async () => {
    const file = await writePng('p.png', 5, 4);
    const img = await decodeImage(file);
    expect([img.width, img.height, img.channels]).toEqual([5, 4, 3]);
    expect(Array.from(img.data)).toEqual(Array.from(pattern(5, 4)));
  });

  it('expands greyscale to RGB and can decode to 1 channel', async () => {
    const file = path.join(dir, 'g.png');
    await sharp(Buffer.from([0, 100, 200, 255]), { raw: { width: 2, height: 2, channels: 1 } }).png().toFile(file);
    expect(Array.from((await decodeImage(file)).data)).toEqual([0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255]);
    expect(Array.from((await decodeImage(file, 1)).data)).toEqual([0, 100, 200, 255]);
  });

  it('names corrupt, truncated and missing files', async () => {
    const jpg = path.join(dir, 'full.jpg');
    await sharp(pattern(64, 64), { raw: { width: 64, height: 64, channels: 3 } }).jpeg().toFile(jpg);
    const bytes = fs.readFileSync(jpg);
    const truncated = path.join(dir, 'truncated.jpg');
    fs.writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const garbage = path.join(dir, 'garbage.jpg');
    fs.writeFileSync(garbage, 'this is not an image');
    await expect(decodeImage(truncated)).rejects.toThrow(/truncated\.jpg/);
    await expect(decodeImage(garbage)).rejects.toThrow(/garbage\.jpg/);
    await expect(decodeImage(path.join(dir, 'absent.png'))).rejects.toThrow(/absent\.png/);
    await expect(trainTransform(truncated, new Rng(1), { size: 8 })).rejects.toThrow(/truncated\.jpg/);
  });
});

describe('RandomResizedCrop box (torchvision get_params)', () => {
  it('stays inside the image with area and aspect in range', () => {
    const rng = new Rng(11);
    for (let i = 0; i < 500; i++) {
      const b = randomResizedCropBox(rng, 200, 120);
      expect(b.left >= 0 && b.top >= 0 && b.left + b.width <= 200 && b.top + b.height <= 120).toBe(true);
      const frac = (b.width * b.height) / (200 * 120);
      expect(frac).toBeGreaterThan(0.06); // 0.08 minus rounding of w and h
      expect(frac).toBeLessThanOrEqual(1);
    }
  });

  it('falls back to the central crop with the aspect clamped (hand-computed)', () => {
    // scale > 1 always fails the 10 tries; 300x100 has ratio 3 > 4/3 -> h = 100, w = round(100 * 4/3) = 133
    const b = randomResizedCropBox(new Rng(1), 300, 100, [2, 3]);
    expect(b).toEqual({ left: 83, top: 0, width: 133, height: 100 });
    const c = randomResizedCropBox(new Rng(1), 100, 300, [2, 3]); // ratio 1/3 < 3/4 -> w = 100, h = round(100 / 0.75) = 133
    expect(c).toEqual({ left: 0, top: 83, width: 100, height: 133 });
  });
});

describe('transforms', () => {
  it('train transform with a full-image crop reproduces (and flips) the pixels', async () => {
    const file = await writePng('t.png', 6, 6);
    const src = pattern(6, 6);
    const opts = { size: 6, scale: [1, 1] as const, ratio: [1, 1] as const, ...ident };
    const plain = await trainTransform(file, new Rng(0), { ...opts, flipProb: 0 });
    expect(Array.from(plain).map(Math.round)).toEqual(Array.from(src));
    const flipped = await trainTransform(file, new Rng(0), { ...opts, flipProb: 1 });
    const expected: number[] = [];
    for (let y = 0; y < 6; y++) for (let x = 5; x >= 0; x--) expected.push(...src.subarray((y * 6 + x) * 3, (y * 6 + x) * 3 + 3));
    expect(Array.from(flipped).map(Math.round)).toEqual(expected);
  });

  it('eval transform center-crops (no resize when resize = shorter side)', async () => {
    const file = await writePng('e.png', 10, 8);
    const out = await evalTransform(file, { resize: 8, crop: 4, ...ident });
    // resize keeps 10x8; crop left = round(6/2) = 3, top = round(4/2) = 2
    const expected: number[] = [];
    for (let y = 2; y < 6; y++) for (let x = 3; x < 7; x++) expected.push(x, y, x + y);
    expect(Array.from(out).map(Math.round)).toEqual(expected);
  });

  it('eval transform resizes the shorter side like torchvision Resize(int)', async () => {
    const file = await writePng('r.png', 40, 20);
    const out = await evalTransform(file, { resize: 10, crop: 10, ...ident }); // -> 20x10, crop the middle 10x10
    expect(out.length).toBe(10 * 10 * 3);
  });

  it('normalize applies (x/255 - mean)/std per channel', () => {
    const out = normalize({ data: new Uint8Array([255, 0, 51]), width: 1, height: 1, channels: 3 }, [0.5, 0.5, 0.2], [0.5, 0.25, 0.1]);
    expect(Array.from(out)).toEqual([expect.closeTo(1, 6), expect.closeTo(-2, 6), expect.closeTo(0, 6)]);
  });
});

describe('cropResizeBilinear (in-memory fast path)', () => {
  it('matches hand-computed bilinear values (align_corners=False)', async () => {
    const { cropResizeBilinear } = await import('../src/image.js');
    // 2x1 grey image [0, 100] upscaled to 4x1: source x = (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamp
    const img = { data: new Uint8Array([0, 100]), width: 2, height: 1, channels: 1 };
    expect(Array.from(cropResizeBilinear(img, { left: 0, top: 0, width: 2, height: 1 }, 4, 1, false).data)).toEqual([0, 25, 75, 100]);
    expect(Array.from(cropResizeBilinear(img, { left: 0, top: 0, width: 2, height: 1 }, 4, 1, true).data)).toEqual([100, 75, 25, 0]);
    // a crop at the native size is a plain copy
    const p = { data: pattern(5, 4), width: 5, height: 4, channels: 3 };
    const c = cropResizeBilinear(p, { left: 1, top: 2, width: 3, height: 2 }, 3, 2, false);
    expect(Array.from(c.data)).toEqual([1, 2, 3, 2, 2, 4, 3, 2, 5, 1, 3, 4, 2, 3, 5, 3, 3, 6]);
    expect(() => cropResizeBilinear(p, { left: 3, top: 0, width: 3, height: 1 }, 3, 1, false)).toThrow(/outside the 5x4 image/);
  });

  it('raw-source train transform agrees with the sharp path to within rounding', async () => {
    const w = 24;
    const raw = { data: pattern(w, w), width: w, height: w, channels: 3 };
    const file = await writePng('same.png', w, w);
    const opts = { size: 16, scale: [0.5, 1] as const, ...ident };
    for (let seed = 0; seed < 3; seed++) {
      const a = await trainTransform(raw, new Rng(seed), opts);
      const b = await trainTransform(file, new Rng(seed), opts);
      let maxDiff = 0;
      for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
      expect(maxDiff).toBeLessThanOrEqual(3); // both bilinear on a smooth ramp; sharp rounds its own way
    }
  });
});
