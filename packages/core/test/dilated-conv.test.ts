/**
 * Dilated tf.layers convs are trainable through one mechanism, `dilatedConv2d` (space-to-batch,
 * undilated conv, batch-to-space), switched on by `enableDilatedConvGradients`: outputs, input
 * and kernel gradients equal those of the explicitly zero-inserted kernel (an independent reference).
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { enableDilatedConvGradients } from '../src/refconv-op.js';

/** The dilated kernel written out explicitly: zeros between taps. */
function expandKernel(w: tf.Tensor4D, r: number): tf.Tensor4D {
  const [kh, kw, ci, co] = w.shape;
  const eh = (kh - 1) * r + 1;
  const ew = (kw - 1) * r + 1;
  const src = w.arraySync();
  const out = Array.from({ length: eh }, () => Array.from({ length: ew }, () => Array.from({ length: ci }, () => new Array<number>(co).fill(0))));
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) out[i * r]![j * r] = src[i]![j]!;
  return tf.tensor4d(out as number[][][][]);
}

const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

describe('dilated tf.layers convs (enableDilatedConvGradients)', () => {
  enableDilatedConvGradients();
  for (const [pad, r, h, w, activation] of [
    ['same', 2, 9, 10, 'linear'],
    ['same', 3, 7, 8, 'relu'],
    ['valid', 2, 11, 9, 'linear'],
    ['same', 6, 13, 14, 'relu'],
  ] as const) {
    it(`Conv2D ${pad} rate ${r} ${activation} on ${h}x${w}: output, dx and dkernel equal the zero-inserted kernel's`, () => {
      const layer = tf.layers.conv2d({ filters: 4, kernelSize: 3, dilationRate: r, padding: pad, activation, useBias: true, biasInitializer: 'glorotNormal' });
      const x = tf.randomNormal([2, h, w, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
      layer.apply(x);
      const [kernel, bias] = layer.getWeights() as [tf.Tensor4D, tf.Tensor1D];
      const oh = pad === 'same' ? h : h - 2 * r;
      const ow = pad === 'same' ? w : w - 2 * r;
      const up = tf.randomNormal([2, oh, ow, 4], 0, 1, 'float32', 3);
      const act = (y: tf.Tensor) => (activation === 'relu' ? tf.relu(y) : y);
      const big = expandKernel(kernel, r);
      const ref = (xx: tf.Tensor, bb: tf.Tensor) => act(tf.add(tf.conv2d(xx as tf.Tensor4D, bb as tf.Tensor4D, 1, pad), bias));
      expect(maxAbsDiff(layer.apply(x) as tf.Tensor, ref(x, big))).toBeLessThan(1e-4);
      // gradients through the layer: w.r.t. the input and the kernel variable
      const [dx] = tf.grads((xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx) as tf.Tensor, up)))([x]);
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, up)) as tf.Scalar);
      const dk = Object.entries(grads).find(([n]) => n.includes('kernel'))![1];
      const [rdx, rbig] = tf.grads((xx: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(ref(xx, bb), up)))([x, big]);
      const taps = tf.stridedSlice(rbig!, [0, 0, 0, 0], rbig!.shape, [r, r, 1, 1]);
      expect(maxAbsDiff(dx!, rdx!)).toBeLessThan(1e-4);
      expect(maxAbsDiff(dk, taps)).toBeLessThan(1e-4);
    });
  }

  it('undilated convs keep the original fused path (same outputs as a plain conv)', () => {
    const layer = tf.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same' });
    const x = tf.randomNormal([1, 6, 6, 3], 0, 1, 'float32', 5);
    const y = layer.apply(x) as tf.Tensor;
    const [k, b] = layer.getWeights();
    expect(maxAbsDiff(y, tf.add(tf.conv2d(x as tf.Tensor4D, k as tf.Tensor4D, 1, 'same'), b!))).toBeLessThan(1e-5);
  });
});
