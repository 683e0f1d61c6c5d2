import { describe, expect, it } from 'vitest';
import { maskUtils } from '../src/index.js';
import { fixture } from './helpers.js';

const M = fixture('mask_api.json');
const {
  rleFrPoly, rleFrBbox, rleToString, rleFrString, rleEncode, rleDecode, rleArea, rleToBbox, rleMerge, rleIou, bbIou,
  frUncompressedRLE, segmentationToRle,
} = maskUtils;

/** Naive reference: decode by expanding runs pixel by pixel. */
function naiveDecode(counts: ArrayLike<number>, size: number): number[] {
  const out: number[] = [];
  let v = 0;
  for (let i = 0; i < counts.length; i++) {
    for (let k = 0; k < counts[i]!; k++) out.push(v);
    v = 1 - v;
  }
  while (out.length < size) out.push(0);
  return out;
}

describe('compressed RLE strings (pycocotools fixtures)', () => {
  it('frPoly gives the same strings, areas and boxes as maskApi.c', () => {
    for (const c of M.polygons) {
      const rle = rleFrPoly(c.poly, c.h, c.w);
      expect(rleToString(rle)).toBe(c.counts);
      expect(rleArea(rle)).toBe(c.area);
      expect(rleToBbox(rle)).toEqual(c.bbox);
    }
  });
  it('frBbox', () => {
    for (const c of M.boxes) expect(rleToString(rleFrBbox(c.box, c.h, c.w))).toBe(c.counts);
  });
  it('encode of masks, and decode back to the same pixels', () => {
    for (const c of M.encode) {
      let mask: Uint8Array;
      if (c.maskColMajor) mask = Uint8Array.from(c.maskColMajor);
      else {
        mask = new Uint8Array(c.h * c.w);
        for (const [y0, y1, x0, x1] of c.rect) for (let x = x0; x < x1; x++) for (let y = y0; y < y1; y++) mask[x * c.h + y] = 1;
      }
      const rle = rleEncode(mask, c.h, c.w);
      expect(rleToString(rle)).toBe(c.counts);
      const back = rleFrString(c.counts, c.h, c.w);
      expect(Array.from(back.counts)).toEqual(Array.from(rle.counts));
      expect(Array.from(rleDecode(back))).toEqual(Array.from(mask));
    }
  });
  it('merge: union and intersection', () => {
    for (const c of M.merge) {
      const rles = c.counts.map((s: string) => rleFrString(s, c.h, c.w));
      expect(rleToString(rleMerge(rles))).toBe(c.union);
      expect(rleToString(rleMerge(rles, true))).toBe(c.intersection);
    }
  });
  it('mask IoU with crowd flags', () => {
    const c = M.iou[0];
    const dt = c.dt.map((s: string) => rleFrString(s, c.h, c.w));
    const gt = c.gt.map((s: string) => rleFrString(s, c.h, c.w));
    const o = rleIou(dt, gt, c.iscrowd);
    expect(Array.from(o)).toEqual(c.iou.flat());
  });
  it('box IoU with crowd flags', () => {
    const c = M.bboxIou;
    expect(Array.from(bbIou(c.dt.flat(), c.gt.flat(), c.iscrowd))).toEqual(c.iou.flat());
  });
  it('uncompressed RLE -> compressed string, box and area', () => {
    for (const c of M.uncompressed) {
      const rle = frUncompressedRLE({ size: [c.h, c.w], counts: c.counts });
      expect(rleToString(rle)).toBe(c.compressed);
      expect(rleToBbox(rle)).toEqual(c.bbox);
      expect(rleArea(rle)).toBe(c.area);
    }
  });
});

describe('mask API against naive references', () => {
  it('decode equals run expansion; area equals the pixel count; bbox equals the pixel extent', () => {
    for (const c of M.polygons) {
      const rle = rleFrString(c.counts, c.h, c.w);
      const pix = naiveDecode(rle.counts, c.h * c.w);
      expect(Array.from(rleDecode(rle))).toEqual(pix);
      expect(rleArea(rle)).toBe(pix.reduce((a, b) => a + b, 0));
      let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
      pix.forEach((v, i) => {
        if (!v) return;
        const x = Math.floor(i / c.h), y = i % c.h;
        x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      });
      // pycocotools' box is the pixel extent, except that a run crossing a column spans full height
      if (x1 >= 0 && x0 === x1) expect(rleToBbox(rle)).toEqual([x0, y0, 1, y1 - y0 + 1]);
      if (x1 >= 0) expect(rleToBbox(rle)[0]).toBe(x0);
    }
  });
  it('row-major helpers transpose as numpy would (fixture masks read row by row)', () => {
    for (const c of M.encode.filter((e: any) => e.maskColMajor)) {
      const row = new Uint8Array(c.h * c.w);
      for (let x = 0; x < c.w; x++) for (let y = 0; y < c.h; y++) row[y * c.w + x] = c.maskColMajor[x * c.h + y];
      expect(maskUtils.encodeRowMajor(row, c.h, c.w).counts).toBe(c.counts);
      expect(Array.from(maskUtils.decodeRowMajor({ size: [c.h, c.w], counts: c.counts }).mask)).toEqual(Array.from(row));
    }
  });
  it('a hand-made 3x3 mask', () => {
    // column-major: column 0 = [0,1,1], column 1 = [1,0,0], column 2 = [0,0,0]
    const rle = rleEncode(Uint8Array.from([0, 1, 1, 1, 0, 0, 0, 0, 0]), 3, 3);
    expect(Array.from(rle.counts)).toEqual([1, 3, 5]);
    expect(rleArea(rle)).toBe(3);
    expect(rleToBbox(rle)).toEqual([0, 0, 2, 3]);
    expect(rleToString(rle)).toBe('135');
  });
  it('string round trip of large and decreasing counts (multi-character and negative groups)', () => {
    const counts = Uint32Array.from([0, 70000, 5, 1, 4294967295 - 70006, 3, 0, 123456789]);
    const s = rleToString({ h: 1, w: 1, counts });
    expect(Array.from(rleFrString(s, 1, 1).counts)).toEqual(Array.from(counts));
  });
  it('rejects corrupt strings and bad segmentations with a clear message', () => {
    expect(() => rleFrString('ab~', 2, 2)).toThrow(/invalid character '~'/);
    expect(() => rleFrString('o', 2, 2)).toThrow(/truncated/);
    expect(() => segmentationToRle([], 5, 5, 'ann 7')).toThrow(/ann 7: empty polygon list/);
    expect(() => segmentationToRle([[1, 2, 3, 'x']], 5, 5, 'ann 7')).toThrow(/ann 7/);
    expect(() => segmentationToRle({ counts: 3, size: [2, 2] }, 5, 5, 'ann 8')).toThrow(/ann 8/);
    expect(() => rleDecode({ h: 2, w: 2, counts: Uint32Array.from([1, 9]) })).toThrow(/past h\*w/);
  });
});
