/** Shared helpers of the tests: fixture paths and a full evaluation run. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedDataset } from '@refconv/engine';
import { expect } from 'vitest';
import { COCO, COCOeval, Params } from '../src/index.js';

export const FIX = fileURLToPath(new URL('./fixtures/', import.meta.url));
export const COCO128_GT = join(sharedDataset('coco128'), 'annotations', 'instances_train2017.json');

export function fixture<T = any>(name: string): T {
  return JSON.parse(readFileSync(FIX + name, 'utf8')) as T;
}

/** What make_fixtures.py recorded from pycocotools for one evaluation. */
export interface RefEval {
  iouType: 'bbox' | 'segm' | 'keypoints';
  params: Partial<Record<keyof Params, any>>;
  stats: number[];
  table: string[];
  counts: number[];
  recall: number[];
  precisionSumR: number[];
  scoresSumR: number[];
  perCategory: { catId: number; ap: number; ap50: number; ap75: number; ar: number }[];
  evalImgs: any[];
}

/** Runs our COCOeval with the reference's params; returns the evaluator and the printed lines. */
export function runEval(gt: COCO, dtFile: string, ref: RefEval) {
  const dt = gt.loadRes(FIX + dtFile);
  const E = new COCOeval(gt, dt, ref.iouType);
  for (const [k, v] of Object.entries(ref.params)) {
    (E.params as any)[k] = k === 'useCats' ? Boolean(v) : v;
  }
  E.evaluate();
  E.accumulate();
  const lines: string[] = [];
  E.summarize({ log: (l) => lines.push(l) });
  return { E, lines };
}

/** Largest absolute difference; arrays must have equal length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Sums precision-like [T,R,K,A,M] over R, giving [T,K,A,M] (independent of the code under test). */
export function sumOverR(x: Float64Array, counts: number[]): number[] {
  const [T, R, K, A, M] = counts as [number, number, number, number, number];
  const out = new Array<number>(T * K * A * M).fill(0);
  for (let t = 0; t < T; t++)
    for (let r = 0; r < R; r++)
      for (let k = 0; k < K; k++)
        for (let a = 0; a < A; a++)
          for (let m = 0; m < M; m++) out[((t * K + k) * A + a) * M + m] += x[(((t * R + r) * K + k) * A + a) * M + m]!;
  return out;
}

/** Every check against one pycocotools record. */
export function expectMatchesReference(E: COCOeval, lines: string[], ref: RefEval): void {
  expect(E.stats).toHaveLength(ref.iouType === 'keypoints' ? 10 : 12);
  expect(maxAbsDiff(E.stats, ref.stats)).toBeLessThanOrEqual(1e-12);
  expect(lines).toEqual(ref.table);
  const ev = E.eval!;
  expect(ev.counts).toEqual(ref.counts);
  expect(maxAbsDiff(ev.recall, ref.recall)).toBeLessThanOrEqual(1e-12);
  expect(maxAbsDiff(sumOverR(ev.precision, ev.counts), ref.precisionSumR)).toBeLessThanOrEqual(1e-10);
  expect(maxAbsDiff(sumOverR(ev.scores, ev.counts), ref.scoresSumR)).toBeLessThanOrEqual(1e-10);
  const per = E.perCategory();
  expect(per.map((c) => c.catId)).toEqual(ref.perCategory.map((c) => c.catId));
  for (const key of ['ap', 'ap50', 'ap75', 'ar'] as const) {
    expect(maxAbsDiff(per.map((c) => c[key]), ref.perCategory.map((c) => c[key]))).toBeLessThanOrEqual(1e-12);
  }
  for (const r of ref.evalImgs) {
    const ours = E.evaluateImg(r.image_id, r.category_id, r.aRng, r.maxDet);
    expect(ours).not.toBeNull();
    expect({ ...ours, aRng: ours!.aRng.map(Number) }).toEqual(r);
  }
}
