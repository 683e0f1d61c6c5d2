import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '@refconv/engine';
import { featureRedundancy, weightRedundancy } from '../src/index.js';

/** Naive float64 loops over a [B,H,W,C] row-major array: the definitions as written in the README. */
function naiveFeature(data: Float32Array, [b, h, w, c]: number[]): { kl: number; cos: number } {
  let klTot = 0, cosTot = 0;
  for (let n = 0; n < b; n++) {
    const maps: number[][] = [];
    for (let ch = 0; ch < c; ch++) {
      const m: number[] = [];
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) m.push(data[((n * h + y) * w + x) * c + ch]!);
      maps.push(m);
    }
    const probs = maps.map((m) => { const mx = Math.max(...m); const e = m.map((v) => Math.exp(v - mx)); const s = e.reduce((a, v) => a + v, 0); return e.map((v) => v / s); });
    const kl = (p: number[], q: number[]) => p.reduce((s, pi, i) => s + pi * Math.log(pi / q[i]!), 0);
    let klSum = 0, cosSum = 0;
    for (let i = 0; i < c; i++) for (let j = 0; j < c; j++) {
      if (i === j) continue;
      klSum += (kl(probs[i]!, probs[j]!) + kl(probs[j]!, probs[i]!)) / 2;
      const dot = maps[i]!.reduce((s, v, k) => s + v * maps[j]![k]!, 0);
      const ni = Math.hypot(...maps[i]!), nj = Math.hypot(...maps[j]!);
      cosSum += ni > 0 && nj > 0 ? Math.abs(dot) / (ni * nj) : 0;
    }
    klTot += klSum / (c * (c - 1));
    cosTot += cosSum / (c * (c - 1));
  }
  return { kl: klTot / b, cos: cosTot / b };
}

function naiveWeight(kernel: Float32Array, [k, , a, b]: number[], depthwise: boolean): number {
  const vecs: number[][] = [];
  if (depthwise) {
    for (let i = 0; i < a; i++) for (let o = 0; o < b; o++) { const v: number[] = []; for (let p = 0; p < k * k; p++) v.push(kernel[(p * a + i) * b + o]!); vecs.push(v); }
  } else {
    for (let o = 0; o < b; o++) { const v: number[] = []; for (let p = 0; p < k * k; p++) for (let i = 0; i < a; i++) v.push(kernel[(p * a + i) * b + o]!); vecs.push(v); }
  }
  let s = 0;
  for (let i = 0; i < vecs.length; i++) for (let j = 0; j < vecs.length; j++) {
    if (i === j) continue;
    const dot = vecs[i]!.reduce((t, v, q) => t + v * vecs[j]![q]!, 0);
    s += Math.abs(dot) / (Math.hypot(...vecs[i]!) * Math.hypot(...vecs[j]!));
  }
  return s / (vecs.length * (vecs.length - 1));
}

describe('channel redundancy', () => {
  it('feature KL and |cos| on random maps equal naive float64 loops', () => {
    const rng = new Rng(7);
    for (const shape of [[2, 5, 4, 3], [3, 7, 7, 8], [1, 3, 3, 2]] as const) {
      const n = (shape as readonly number[]).reduce((a, b) => a * b, 1);
      // scale 3 so the softmaxes are far from uniform; one channel all zero in the last case
      const data = Float32Array.from({ length: n }, (_, i) => (shape[3] === 2 && i % 2 === 1 ? 0 : 3 * rng.normal()));
      const t = tf.tensor4d(data, [...shape]);
      const got = featureRedundancy(t);
      t.dispose();
      const want = naiveFeature(data, [...shape]);
      expect(got.kl).toBeCloseTo(want.kl, 4);
      expect(got.cos).toBeCloseTo(want.cos, 5);
      expect(got.kl).toBeGreaterThan(0.01);
    }
  });

  it('identical channels give KL 0 and |cos| 1; sign-flipped channels |cos| 1', () => {
    const m = Float32Array.from({ length: 16 }, (_, i) => Math.sin(i));
    const data = new Float32Array(16 * 3);
    for (let i = 0; i < 16; i++) { data[i * 3] = m[i]!; data[i * 3 + 1] = m[i]!; data[i * 3 + 2] = -m[i]!; }
    const t = tf.tensor4d(data, [1, 4, 4, 3]);
    const r = featureRedundancy(t);
    t.dispose();
    expect(r.cos).toBeCloseTo(1, 5);
    // channels 0 and 1 identical (KL 0), channel 2 differs: mean over 6 ordered pairs of 2 non-zero values x2 each
    const want = naiveFeature(data, [1, 4, 4, 3]);
    expect(r.kl).toBeCloseTo(want.kl, 5);
  });

  it('weight |cos| of regular and depthwise kernels equals naive loops', () => {
    const rng = new Rng(3);
    for (const [shape, dw] of [[[3, 3, 4, 6], false], [[3, 3, 5, 2], true], [[1, 1, 8, 4], false]] as const) {
      const n = (shape as readonly number[]).reduce((a, b) => a * b, 1);
      const k = Float32Array.from({ length: n }, () => rng.normal());
      expect(weightRedundancy(k, [...shape], dw)).toBeCloseTo(naiveWeight(k, [...shape], dw), 5);
    }
    expect(weightRedundancy(new Float32Array(9), [3, 3, 1, 1], false)).toBeNaN();
  });

  it('frees its tensors', () => {
    const t = tf.randomNormal([2, 6, 6, 4]) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    featureRedundancy(t);
    weightRedundancy(new Float32Array(36), [3, 3, 2, 2], false);
    expect(tf.memory().numTensors).toBe(before);
    t.dispose();
  });
});
