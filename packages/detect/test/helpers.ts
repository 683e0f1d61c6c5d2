import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { Detections, FasterRCNNOptions } from '../src/index.js';

/** Reads a committed JSON fixture from test/fixtures. */
export function fixture<T = Record<string, unknown>>(name: string): T {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')) as T;
}

/** Element-wise closeness with a combined absolute/relative tolerance. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol = 1e-4, rtol = 1e-4): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    const a = actual[i]!;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      throw new Error(`index ${i}: got ${a}, expected ${e}`);
    }
  }
}

/** A Faster R-CNN small enough for unit tests (tiny backbone, 8-channel FPN, few proposals). */
export function tinyFasterRCNNOptions(inputSize?: [number, number]): FasterRCNNOptions {
  return {
    numClasses: 2,
    backbone: { arch: 'tiny', tinyWidths: [4, 8, 8, 8], ...(inputSize ? { inputSize } : {}) },
    fpnChannels: 8,
    representationSize: 16,
    anchorSizes: [8, 16, 32, 64, 128],
    rpnPreNmsTopN: { train: 50, test: 30 },
    rpnPostNmsTopN: { train: 40, test: 20 },
    rpnBatchSizePerImage: 32,
    boxBatchSizePerImage: 24,
    freezeBatchNorm: false,
  };
}

/** `b` has `a`'s labels, scores (1e-5) and boxes (1e-3), and `a` has more than `minCount` detections. */
export function expectSameDetections(b: Detections, a: Detections, minCount: number): void {
  expect(a.scores.length).toBeGreaterThan(minCount);
  expect(b.labels).toEqual(a.labels);
  expectClose(b.scores, a.scores, 1e-5);
  expectClose(b.boxes, a.boxes, 1e-3);
}
