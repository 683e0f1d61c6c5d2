import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { assignFpnLevels, roiAlign } from '../src/index.js';
import { expectClose, fixture } from './helpers.js';

interface Case { out_nhwc: number[]; out_shape: number[]; loss_weights_nhwc: number[]; grad_nhwc: number[] }
const fx = fixture<{ feature_nhwc: number[]; feature_shape: number[]; rois: number[]; False: Case; True: Case; level_boxes: number[]; levels_2_5: number[] }>('roi_align.json');

describe('roiAlign', () => {
  const feat = tf.tensor4d(fx.feature_nhwc, fx.feature_shape as [number, number, number, number]);
  for (const aligned of [false, true]) {
    const c = aligned ? fx.True : fx.False;
    const opts = { outputSize: [3, 2] as [number, number], spatialScale: 0.25, samplingRatio: 2, aligned };
    it(`matches torchvision _roi_align and its gradient (aligned=${aligned})`, () => {
      const out = roiAlign(feat, fx.rois, opts);
      expect(out.shape).toEqual(c.out_shape);
      expectClose(out.dataSync(), c.out_nhwc, 1e-5);
      const w = tf.tensor(c.loss_weights_nhwc, c.out_shape);
      const g = tf.grad((f: tf.Tensor) => roiAlign(f as tf.Tensor4D, fx.rois, opts).mul(w).sum())(feat);
      expectClose(g.dataSync(), c.grad_nhwc, 1e-5);
    });
  }

  it('gradient agrees with central finite differences', () => {
    const f = tf.randomNormal([1, 5, 6, 2], 0, 1, 'float32', 11) as tf.Tensor4D;
    const rois = [0, 2.3, 1.1, 17.5, 15.2];
    const opts = { outputSize: [2, 2] as [number, number], spatialScale: 0.25, samplingRatio: 2 };
    const loss = (x: tf.Tensor) => roiAlign(x as tf.Tensor4D, rois, opts).square().sum();
    const g = tf.grad(loss)(f).dataSync();
    const base = f.dataSync();
    const eps = 1e-2;
    for (const i of [0, 7, 13, 24, 31, 50]) {
      const plus = Float32Array.from(base);
      const minus = Float32Array.from(base);
      plus[i] += eps;
      minus[i] -= eps;
      const fd = (loss(tf.tensor(plus, f.shape)).dataSync()[0]! - loss(tf.tensor(minus, f.shape)).dataSync()[0]!) / (2 * eps);
      expect(Math.abs(fd - g[i]!)).toBeLessThan(2e-3 + 1e-2 * Math.abs(fd));
    }
  });

  it('samples outside the map contribute 0, hand-computed on a constant map', () => {
    const ones = tf.ones([1, 4, 4, 1]) as tf.Tensor4D;
    // box from x=-8 to 8 at scale 1, 1 bin x 2 bins, 1 sample: x samples at -4 (outside [-1, 4]) and 4 (inside)
    const out = roiAlign(ones, [0, -8, 0, 8, 2], { outputSize: [1, 2], spatialScale: 1, samplingRatio: 1 });
    expect(Array.from(out.dataSync())).toEqual([0, 1]);
  });

  it('FPN level assignment equals torchvision LevelMapper', () => {
    expect(Array.from(assignFpnLevels(fx.level_boxes, 2, 5))).toEqual(fx.levels_2_5);
  });
});
