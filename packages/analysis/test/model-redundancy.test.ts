import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { refocus } from '@refconv/core';
import { Rng } from '@refconv/engine';
import { convLayersOf, featureRedundancy, modelRedundancy, weightRedundancy, type ImageBatch } from '../src/index.js';

function tinyModel(): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 2] });
  let h = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'c1', kernelInitializer: tf.initializers.randomNormal({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization({ name: 'bn1' }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.reLU().apply(h) as tf.SymbolicTensor;
  h = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', name: 'dw', depthwiseInitializer: tf.initializers.randomNormal({ seed: 2 }) }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.conv2d({ filters: 3, kernelSize: 1, name: 'pw', kernelInitializer: tf.initializers.randomNormal({ seed: 3 }) }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 2, name: 'fc' }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

function batch(n: number): ImageBatch {
  const rng = new Rng(5);
  return { x: Float32Array.from({ length: n * 8 * 8 * 2 }, () => rng.normal()), labels: new Int32Array(n), n, size: 8, channels: 2, mean: [0, 0], std: [1, 1], indices: [] };
}

describe('modelRedundancy', () => {
  it('per layer equals featureRedundancy of the conv output computed directly, chunking does not matter', () => {
    const model = tinyModel();
    const images = batch(5);
    const r = modelRedundancy(model, images, { batchSize: 2, label: false });
    expect(r.layers.map((l) => [l.layer, l.depth, l.kernelSize, l.channels])).toEqual([['c1', 1, 3, 4], ['dw', 2, 3, 4], ['pw', 3, 1, 3]]);
    // conv c1 by hand: tf.conv2d with the layer's kernel and bias
    const [k, b] = model.getLayer('c1').getWeights();
    const x = tf.tensor4d(images.x, [5, 8, 8, 2]);
    const f = tf.add(tf.conv2d(x, k as tf.Tensor4D, 1, 'same'), b!) as tf.Tensor4D;
    const want = featureRedundancy(f);
    expect(r.layers[0]!.kl).toBeCloseTo(want.kl, 4);
    expect(r.layers[0]!.cos).toBeCloseTo(want.cos, 5);
    expect(r.layers[0]!.weightCos).toBeCloseTo(weightRedundancy(k!.dataSync() as Float32Array, k!.shape as [number, number, number, number], false), 6);
    const dwk = model.getLayer('dw').getWeights()[0]!;
    expect(r.layers[1]!.weightCos).toBeCloseTo(weightRedundancy(dwk.dataSync() as Float32Array, dwk.shape as [number, number, number, number], true), 6);
    tf.dispose([x, f]);
    const whole = modelRedundancy(model, images, { batchSize: 64, label: false });
    whole.layers.forEach((l, i) => expect(l.kl).toBeCloseTo(r.layers[i]!.kl, 4));
    expect(r.mean.cos).toBeCloseTo((r.layers[0]!.cos + r.layers[1]!.cos + r.layers[2]!.cos) / 3, 6);
  });

  it('RefConv layers are found and measured with W_t; no tensor leaks', () => {
    const model = tinyModel();
    const ref = refocus(model, { mapK: 3, seed: 4 });
    const convs = convLayersOf(ref);
    expect(convs.map((c) => [c.name, c.refconv, c.depthwise])).toEqual([['c1', true, false], ['dw', true, true], ['pw', false, false]]);
    // The first call fills each dense RefConv layer's cache of its basis' patch columns (one tensor
    // per layer, held until the layer is disposed); after that, calls allocate nothing that stays.
    const cached = tf.memory().numTensors;
    modelRedundancy(ref, batch(3), { label: false });
    expect(tf.memory().numTensors - cached).toBe(1); // 'dw', the one dense (depthwise) RefConv layer
    const before = tf.memory().numTensors;
    const r = modelRedundancy(ref, batch(3), { label: false });
    expect(tf.memory().numTensors).toBe(before);
    // the refocused kernel differs from the basis, so the weight redundancy differs from the plain model's
    const plain = modelRedundancy(model, batch(3), { label: false });
    expect(r.layers[0]!.weightCos).not.toBeCloseTo(plain.layers[0]!.weightCos, 4);
    expect(r.layers[2]!.weightCos).toBeCloseTo(plain.layers[2]!.weightCos, 6);
  });
});
