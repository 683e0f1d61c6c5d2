import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { enableDilatedConvGradients } from '../src/ops/dilated-grad.js';

/** The dilated kernel written out explicitly: zeros between taps (an independent reference). */
function expandKernel(w: tf.Tensor4D, r: number): tf.Tensor4D {
  const [kh, kw, ci, co] = w.shape;
  const eh = (kh - 1) * r + 1;
  const ew = (kw - 1) * r + 1;
  const src = w.arraySync();
  const out = Array.from({ length: eh }, () => Array.from({ length: ew }, () => Array.from({ length: ci }, () => new Array<number>(co).fill(0))));
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) out[i * r]![j * r] = src[i]![j]!;
  return tf.tensor4d(out as number[][][][]);
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

describe('dilated conv gradients', () => {
  enableDilatedConvGradients();
  for (const [pad, r, h, w] of [
    ['same', 2, 9, 10],
    ['same', 3, 7, 8],
    ['valid', 2, 11, 9],
  ] as const) {
    it(`conv2d ${pad} rate ${r} on ${h}x${w}: dx and dw equal those of the explicit zero-inserted kernel`, () => {
      const x = tf.randomNormal([2, h, w, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
      const k = tf.randomNormal([3, 3, 3, 4], 0, 1, 'float32', 2) as tf.Tensor4D;
      const up = tf.randomNormal([2, pad === 'same' ? h : h - 2 * r, pad === 'same' ? w : w - 2 * r, 4], 0, 1, 'float32', 3);
      const f = (xx: tf.Tensor, kk: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(xx as tf.Tensor4D, kk as tf.Tensor4D, 1, pad, 'NHWC', r), up));
      const [dx, dk] = tf.grads(f)([x, k]);
      const big = expandKernel(k, r);
      const [rdx, rbig] = tf.grads((xx: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(xx as tf.Tensor4D, bb as tf.Tensor4D, 1, pad), up)))([x, big]);
      // dk = the taps of the big kernel's gradient
      const taps = tf.stridedSlice(rbig!, [0, 0, 0, 0], rbig!.shape, [r, r, 1, 1]);
      expect(maxAbsDiff(dx!, rdx!)).toBeLessThan(1e-4);
      expect(maxAbsDiff(dk!, taps)).toBeLessThan(1e-4);
    });
  }

  it('a tf.layers Conv2D with dilation (fused path) trains', () => {
    const layer = tf.layers.conv2d({ filters: 4, kernelSize: 3, dilationRate: 6, padding: 'same', useBias: true });
    const input = tf.randomNormal([1, 13, 14, 3]);
    layer.apply(input);
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(layer.apply(input) as tf.Tensor)) as tf.Scalar);
    expect(Number.isFinite(value.dataSync()[0]!)).toBe(true);
    expect(Object.keys(grads)).toHaveLength(2);
  });
});
