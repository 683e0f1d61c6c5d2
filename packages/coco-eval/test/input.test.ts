/**
 * Evaluator input handling (issue 15): a ground truth without `images`, results with the bare
 * NaN / Infinity / -Infinity tokens Python's json.dump writes (checked against pycocotools 2.0.11,
 * fixtures/make_nonfinite_fixture.py -> fixtures/nonfinite_evals.json), and `maxDets` with fewer
 * than three entries. Every data file is written by the test into a temp dir.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COCO, COCOeval, readJson } from '../src/index.js';
import { FIX, fixture, maxAbsDiff, sumOverR } from './helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'coco-eval-input-'));

/** Python's json.dump spelling of a results list (non-finite floats as bare tokens). */
function pythonJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isFinite(x) ? `@@${x}@@` : x)).replace(/"@@([^@]*)@@"/g, '$1');
}

/** The rules of make_nonfinite_fixture.py. */
function nonfiniteBox(i: number, bb: number[]): number[] {
  const b = [...bb];
  if (i % 17 === 2) b[0] = NaN;
  if (i % 19 === 4) b[2] = NaN;
  if (i % 23 === 7) b[3] = Infinity;
  if (i % 29 === 9) b[1] = -Infinity;
  return b;
}

function nonfiniteScore(i: number, s: number): number {
  if (i % 7 === 3) return NaN;
  if (i % 11 === 5) return Infinity;
  if (i % 13 === 6) return -Infinity;
  return s;
}

describe('ground truth without images', () => {
  it('names the ground-truth file and the missing key, not the results', () => {
    const dir = tmp();
    const gtFile = join(dir, 'gt_no_images.json');
    writeFileSync(gtFile, JSON.stringify({ annotations: [{ id: 1, image_id: 42, category_id: 1, bbox: [0, 0, 4, 4], area: 16, iscrowd: 0 }], categories: [{ id: 1, name: 'a' }] }));
    const dtFile = join(dir, 'dt.json');
    writeFileSync(dtFile, JSON.stringify([{ image_id: 42, category_id: 1, bbox: [0, 0, 4, 4], score: 0.9 }]));
    const gt = new COCO(gtFile);
    expect(() => gt.loadRes(dtFile)).toThrow(`${gtFile}: the ground truth has no 'images' array`);
    expect(() => gt.loadRes(dtFile)).not.toThrow(/results\[0\]/);
  });
});

describe("results with Python's NaN / Infinity / -Infinity", () => {
  it('parses the bare tokens and leaves them alone inside strings', () => {
    const dir = tmp();
    const f = join(dir, 'r.json');
    writeFileSync(f, '[{"score": NaN, "a": -Infinity, "b": [Infinity, 1e3], "s": "NaN \\" Infinity", "n": null}]');
    const v = readJson(f);
    expect(v[0].score).toBeNaN();
    expect(v[0].a).toBe(-Infinity);
    expect(v[0].b).toEqual([Infinity, 1000]);
    expect(v[0].s).toBe('NaN " Infinity');
    expect(v[0].n).toBeNull();
    writeFileSync(f, '[{"score": NaNa}]');
    expect(() => readJson(f)).toThrow(/r\.json is not valid JSON/);
  });

  const ref = fixture<{ case: 'scores' | 'boxes'; useCats: number; stats: number[]; precisionSumR: number[]; recall: number[]; counts: number[] }[]>('nonfinite_evals.json');
  for (const r of ref) {
    it(`evaluates non-finite ${r.case} as pycocotools does (useCats ${r.useCats})`, () => {
      const dir = tmp();
      const dt = fixture<{ score: number; bbox: number[] }[]>('synthetic_dt_bbox.json').map((d, i) =>
        r.case === 'scores' ? { ...d, score: nonfiniteScore(i, d.score) } : { ...d, bbox: nonfiniteBox(i, d.bbox) },
      );
      const dtFile = join(dir, 'nonfinite_dt.json');
      const text = pythonJson(dt);
      if (r.case === 'scores') expect(text).toContain('"score":NaN');
      else expect(text).toMatch(/"bbox":\[NaN,.*"bbox":\[[^\]]*-Infinity/);
      writeFileSync(dtFile, text);
      const gt = new COCO(FIX + 'synthetic_gt.json');
      const E = new COCOeval(gt, gt.loadRes(dtFile), 'bbox');
      E.params.useCats = r.useCats === 1;
      E.evaluate();
      E.accumulate();
      const stats = E.summarize({ log: null });
      expect(maxAbsDiff(stats, r.stats)).toBeLessThan(1e-12);
      expect(E.eval!.counts).toEqual(r.counts);
      expect(maxAbsDiff(sumOverR(E.eval!.precision, r.counts), r.precisionSumR)).toBeLessThan(1e-10);
      expect(maxAbsDiff(E.eval!.recall, r.recall)).toBeLessThan(1e-12);
    });
  }

  it('a bbox that is not 4 numbers is still an error naming the file, result and field', () => {
    const dir = tmp();
    const dtFile = join(dir, 'bad_box.json');
    writeFileSync(dtFile, '[{"image_id": 1000, "category_id": 1, "score": 0.5, "bbox": [1, 2, 3, 4]}, {"image_id": 1000, "category_id": 1, "score": 0.5, "bbox": [1, "2", NaN, 4]}]');
    const gt = new COCO(FIX + 'synthetic_gt.json');
    expect(() => gt.loadRes(dtFile)).toThrow(`${dtFile}: results[1]: 'bbox' must be [x, y, width, height] (4 numbers), got [1,"2",NaN,4]`);
  });
});

describe('maxDets with fewer than three entries', () => {
  it('summarize raises a clear error (pycocotools: IndexError)', () => {
    const gt = new COCO(FIX + 'synthetic_gt.json');
    const E = new COCOeval(gt, gt.loadRes(FIX + 'synthetic_dt_bbox.json'), 'bbox');
    E.params.maxDets = [1, 10];
    E.evaluate();
    E.accumulate();
    expect(() => E.summarize({ log: null })).toThrow(
      'COCOeval.summarize: the 12 detection stats read maxDets[0], maxDets[1] and maxDets[2], but Params.maxDets is [1, 10] (2 entries; pycocotools raises IndexError here)',
    );
  });
});
