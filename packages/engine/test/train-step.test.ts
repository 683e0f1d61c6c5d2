import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { SGD } from '../src/sgd.js';
import { sgdStep, trainableParams } from '../src/train-step.js';

describe('sgdStep', () => {
  it('applies the hand-derived gradient of a linear least-squares loss', () => {
    // y = x W + b, loss = mean over the batch and outputs of (y - t)^2
    const model = tf.sequential({ layers: [tf.layers.dense({ name: 'lin', units: 2, inputShape: [3] })] });
    const W = [0.5, -1, 0.25, 2, -0.5, 1]; // [3, 2] row-major
    const b = [0.1, -0.2];
    model.getLayer('lin').setWeights([tf.tensor2d(W, [3, 2]), tf.tensor1d(b)]);
    const x = [[1, 2, 3], [-1, 0, 2]];
    const t = [[1, 0], [0, 1]];
    const lr = 0.05;

    // naive loops: dL/dW[i][j] = 2/(B*O) * sum_n x[n][i] * r[n][j], dL/db[j] = 2/(B*O) * sum_n r[n][j]
    const r = x.map((xn, n) => [0, 1].map((j) => xn.reduce((s, xi, i) => s + xi * W[i * 2 + j]!, b[j]!) - t[n]![j]!));
    const scale = 2 / (2 * 2);
    const expectedW = W.map((w, k) => w - lr * scale * x.reduce((s, xn, n) => s + xn[Math.floor(k / 2)]! * r[n]![k % 2]!, 0));
    const expectedB = b.map((bj, j) => bj - lr * scale * r.reduce((s, rn) => s + rn[j]!, 0));
    const expectedLoss = r.flat().reduce((s, v) => s + v * v, 0) / 4;

    const params = trainableParams(model);
    const opt = new SGD(params, { momentum: 0 });
    const xt = tf.tensor2d(x);
    const tt = tf.tensor2d(t);
    const before = tf.memory().numTensors;
    const loss = sgdStep(opt, params, lr, () => tf.losses.meanSquaredError(tt, model.apply(xt, { training: true }) as tf.Tensor) as tf.Scalar);
    expect(tf.memory().numTensors).toBe(before);
    expect(loss).toBeCloseTo(expectedLoss, 5);
    const [w2, b2] = model.getLayer('lin').getWeights();
    Array.from(w2!.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(expectedW[i]!, 5));
    Array.from(b2!.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(expectedB[i]!, 5));

    for (let i = 0; i < 5; i++) sgdStep(opt, params, lr, () => tf.losses.meanSquaredError(tt, model.apply(xt, { training: true }) as tf.Tensor) as tf.Scalar);
    expect(tf.memory().numTensors).toBe(before); // no leak per step
  });

  it('stops on a non-finite loss before touching the weights', () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
    const params = trainableParams(model);
    const before = params[0]!.variable.dataSync().slice();
    expect(() => sgdStep(new SGD(params), params, 0.1, () => tf.mul(tf.sum(model.apply(tf.ones([1, 1])) as tf.Tensor), NaN) as tf.Scalar)).toThrow(/loss is NaN/);
    expect(Array.from(params[0]!.variable.dataSync())).toEqual(Array.from(before));
  });
});

describe('reseedWeights', () => {
  it('gives equal weights for equal seeds, keeps constants and the init scale', async () => {
    const { reseedWeights } = await import('../src/reseed.js');
    const build = () => tf.sequential({ layers: [tf.layers.dense({ name: 'd', units: 64, inputShape: [64], kernelInitializer: 'heNormal' }), tf.layers.batchNormalization({ name: 'bn' })] });
    const a = build();
    const b = build();
    expect(reseedWeights(a, 3)).toEqual({ reseeded: ['d/kernel'], skipped: [] });
    reseedWeights(b, 3);
    expect(Array.from(a.getWeights()[0]!.dataSync())).toEqual(Array.from(b.getWeights()[0]!.dataSync()));
    const k = a.getWeights()[0]!.dataSync();
    const std = Math.sqrt(Array.from(k).reduce((s, v) => s + v * v, 0) / k.length);
    expect(std).toBeGreaterThan(Math.sqrt(2 / 64) * 0.8); // heNormal: truncated normal with sigma sqrt(2 / fanIn) (tfjs does not rescale: ~0.88 sigma)
    expect(std).toBeLessThan(Math.sqrt(2 / 64) * 1.1);
    expect(Array.from(a.getWeights()[2]!.dataSync())).toEqual(new Array(64).fill(1)); // bn gamma untouched
    reseedWeights(b, 4);
    expect(Array.from(b.getWeights()[0]!.dataSync())).not.toEqual(Array.from(k));
  });
});
