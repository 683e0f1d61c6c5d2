import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfusionMatrix, metricsFromConfusion, metricsToJson } from '../src/metrics.js';

describe('ConfusionMatrix (hand-computed)', () => {
  it('counts gt rows x pred columns, skips ignore, and derives IoU / accuracies', () => {
    const cm = new ConfusionMatrix(3);
    // pixel pairs (gt, pred): (0,0) (0,1) (1,1) (1,1) (2,0) and one ignored (255,2)
    cm.update([0, 0, 1, 1, 2, 255], [0, 1, 1, 1, 0, 2]);
    expect(Array.from(cm.matrix)).toEqual([1, 1, 0, 0, 2, 0, 1, 0, 0]);
    const m = cm.compute();
    // IoU0 = 1 / (2 + 2 - 1); IoU1 = 2 / (2 + 3 - 2); IoU2 = 0 / (1 + 0 - 0)
    expect(m.iou[0]).toBeCloseTo(1 / 3, 12);
    expect(m.iou[1]).toBeCloseTo(2 / 3, 12);
    expect(m.iou[2]).toBe(0);
    expect(m.mIoU).toBeCloseTo(1 / 3, 12);
    expect(m.pixelAccuracy).toBeCloseTo(3 / 5, 12);
    expect(m.accuracy).toEqual([0.5, 1, 0]);
    expect(m.meanAccuracy).toBeCloseTo(0.5, 12);
    expect(m.numPixels).toBe(5);
  });

  it('excludes a class absent from both prediction and ground truth, keeps a false-positive-only class at IoU 0', () => {
    // 4 classes: class 3 never appears; class 2 only predicted (never in gt).
    const cm = new ConfusionMatrix(4);
    cm.update([0, 0, 1, 1], [0, 2, 1, 1], 'a.png');
    cm.update([1, 0], [1, 0], 'b.png');
    // matrix: gt0 -> [2,0,1,0]; gt1 -> [0,3,0,0]
    const m = cm.compute();
    expect(m.iou[0]).toBeCloseTo(2 / 3, 12);
    expect(m.iou[1]).toBe(1);
    expect(m.iou[2]).toBe(0);
    expect(Number.isNaN(m.iou[3]!)).toBe(true);
    expect(m.mIoU).toBeCloseTo((2 / 3 + 1 + 0) / 3, 12);
    // accuracy of class 2 undefined (not in gt): mean over classes 0 and 1 only
    expect(Number.isNaN(m.accuracy[2]!)).toBe(true);
    expect(m.meanAccuracy).toBeCloseTo((2 / 3 + 1) / 2, 12);
    expect(m.pixelAccuracy).toBeCloseTo(5 / 6, 12);
    const json = metricsToJson(m, ['a', 'b', 'c', 'd']) as { perClass: { iou: number | null }[] };
    expect(json.perClass[3]!.iou).toBeNull();
  });

  it('accumulates over images exactly like one concatenated image', () => {
    const a = new ConfusionMatrix(3);
    a.update([0, 1, 2], [2, 1, 0]);
    a.update([2, 2], [2, 1]);
    const b = new ConfusionMatrix(3);
    b.update([0, 1, 2, 2, 2], [2, 1, 0, 2, 1]);
    expect(Array.from(a.matrix)).toEqual(Array.from(b.matrix));
    const c = new ConfusionMatrix(3);
    c.merge(a);
    expect(c.compute().mIoU).toBe(b.compute().mIoU);
  });

  it('names the source when a ground-truth id is out of range or sizes differ', () => {
    const cm = new ConfusionMatrix(3);
    expect(() => cm.update([0, 7], [0, 0], 'mask_7.png')).toThrow(/mask_7\.png.*class id 7.*\[0, 2\]/);
    expect(() => cm.update([0, 1], [0, 3], 'p.png')).toThrow(/p\.png: predicted class id 3/);
    expect(() => cm.update([0, 1, 2], [0, 1], 'q.png')).toThrow(/q\.png.*3 pixels.*2/);
    expect(() => new ConfusionMatrix(0)).toThrow(/positive integer/);
  });

  it('gives NaN means when nothing was counted', () => {
    const m = metricsFromConfusion(new Float64Array(4), 2);
    expect(Number.isNaN(m.mIoU)).toBe(true);
    expect(Number.isNaN(m.pixelAccuracy)).toBe(true);
  });
});

interface RefCase {
  numClasses: number;
  ignoreIndex: number;
  images: { shape: number[]; gt: number[]; pred: number[] }[];
  confusion: number[];
  expected: { mIoU: number; pixelAccuracy: number; meanAccuracy: number; iou: (number | null)[]; accuracy: (number | null)[]; numPixels: number };
}

describe('ConfusionMatrix vs the numpy reference (tools/ref_metrics.py)', () => {
  const fixture = JSON.parse(readFileSync(new URL('./fixtures/metrics_random.json', import.meta.url), 'utf8')) as { cases: RefCase[] };
  fixture.cases.forEach((c, i) => {
    it(`case ${i}: ${c.numClasses} classes, ${c.images.length} images`, () => {
      const cm = new ConfusionMatrix(c.numClasses, c.ignoreIndex);
      for (const img of c.images) cm.update(img.gt, img.pred);
      expect(Array.from(cm.matrix)).toEqual(c.confusion);
      const m = cm.compute();
      const e = c.expected;
      expect(m.mIoU).toBeCloseTo(e.mIoU, 12);
      expect(m.pixelAccuracy).toBeCloseTo(e.pixelAccuracy, 12);
      expect(m.meanAccuracy).toBeCloseTo(e.meanAccuracy, 12);
      expect(m.numPixels).toBe(e.numPixels);
      m.iou.forEach((v, k) => (e.iou[k] === null ? expect(Number.isNaN(v)).toBe(true) : expect(v).toBeCloseTo(e.iou[k]!, 12)));
      m.accuracy.forEach((v, k) => (e.accuracy[k] === null ? expect(Number.isNaN(v)).toBe(true) : expect(v).toBeCloseTo(e.accuracy[k]!, 12)));
      // the fixture must actually exercise the "absent from both" rule
      expect(e.iou.some((v) => v === null)).toBe(true);
    });
  });
});
