/**
 * `compileForInference` (core: fused, BN folded, TensorFlow's graph runtime) against PyTorch:
 * every family's eval-mode logits and C2..C5 features from the torchvision fixtures of
 * tools/make_fixtures.py, including the dilated (output stride 8 / 16) variants and the official
 * RefConv checkpoints, through the compiled graph rather than tfjs' eager layers.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { compileForInference, UncompilableLayerError } from '@refconv/core';
import { createModel, loadTorchWeights } from '../src/index.js';
import { expectFixtureFeatures, FIXTURES, loadCases, readTensor, relativeError, yieldToEventLoop } from './helpers.js';

afterEach(yieldToEventLoop);

const TOL = 1e-4;
const cases = loadCases();

function outputs(y: tf.Tensor | tf.Tensor[]): tf.Tensor[] {
  return Array.isArray(y) ? y : [y];
}

describe('compiled inference matches PyTorch (logits, 1e-4 relative)', () => {
  for (const [name, c] of Object.entries(cases)) {
    const { arch, ...opts } = c.options;
    it(`${name}: ${arch} ${JSON.stringify(opts)}`, async () => {
      const { model } = loadTorchWeights(createModel(arch, opts), path.join(FIXTURES, c.weights));
      const compiled = await compileForInference(model, { onMismatch: 'throw' });
      expect(compiled.runtime).toBe('graph');
      // conv + bias + ReLU fusion runs on every CPU kernel set (the all-patterns variant needs oneDNN)
      expect(compiled.verification).not.toMatch(/fused conv \+ ReLU:/);
      const x = readTensor(c.io, 'input_nchw', true);
      const want = readTensor(c.io, 'logits');
      const [got] = outputs(compiled.predict(x));
      expect(relativeError(got!, want)).toBeLessThan(TOL);
      // a different batch size than the verification run: the batch dimension is symbolic
      const x3 = tf.concat([x, x, x]);
      const [got3] = outputs(compiled.predict(x3));
      expect(got3!.shape[0]).toBe(3 * x.shape[0]!);
      expect(relativeError(tf.slice(got3!, [2 * x.shape[0]!, 0], [x.shape[0]!, -1]), want)).toBeLessThan(TOL);
      tf.dispose([x, x3, want, got!, got3!]);
      compiled.dispose();
      model.dispose();
    });
    if (!c.features || name.startsWith('refconv_')) continue;
    it(`${name}: C2..C5 features through the compiled graph`, async () => {
      const model = createModel(arch, { ...opts, features: true });
      loadTorchWeights(model, path.join(FIXTURES, c.weights), { strict: false });
      const compiled = await compileForInference(model, { onMismatch: 'throw' });
      const x = readTensor(c.io, 'input_nchw', true);
      const outs = outputs(compiled.predict(x));
      expectFixtureFeatures(outs, c.io, TOL);
      tf.dispose([x, ...outs]);
      compiled.dispose();
      model.dispose();
    });
  }
});

describe('compileForInference with the batch-1 variant (1x1 convs as MatMul where faster at batch 1 here)', () => {
  for (const name of ['mobilenet_v3_large_w025', 'resnet50_w0125']) {
    it(`${name}: batch-1 and batch-N calls both give PyTorch's logits`, async () => {
      const c = cases[name]!;
      const { arch, ...opts } = c.options;
      const { model } = loadTorchWeights(createModel(arch, opts), path.join(FIXTURES, c.weights));
      const compiled = await compileForInference(model, { onMismatch: 'throw', batchOneVariant: true });
      expect(compiled.verification).toMatch(/; batch 1: (1x1 convs as MatMul|the same graph) \(\d+\.\d+ ms with MatMul, \d+\.\d+ ms with convs\)/);
      const x = readTensor(c.io, 'input_nchw', true);
      const want = readTensor(c.io, 'logits');
      const n = x.shape[0]!;
      for (let i = 0; i < n; i++) {
        const [got] = outputs(compiled.predict(tf.slice(x, [i, 0, 0, 0], [1, -1, -1, -1])));
        expect(relativeError(got!, tf.slice(want, [i, 0], [1, -1])), `image ${i}`).toBeLessThan(TOL);
      }
      const [all] = outputs(compiled.predict(x));
      expect(relativeError(all!, want)).toBeLessThan(TOL);
      compiled.dispose();
      model.dispose();
    });
  }
});

describe('compileForInference errors and fallbacks', () => {
  it('names the layer it cannot compile', async () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const y = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'stem' }).apply(input) as tf.SymbolicTensor;
    const z = tf.layers.leakyReLU({ alpha: 0.1, name: 'odd_activation' }).apply(y) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: z });
    await expect(compileForInference(model)).rejects.toThrow(UncompilableLayerError);
    await expect(compileForInference(model)).rejects.toThrow(/layer 'odd_activation' \(LeakyReLU\)/);
    model.dispose();
  });

  it('a BatchNormalization that no conv precedes runs as the per-channel affine map (vs a hand computation)', async () => {
    const input = tf.input({ shape: [2, 2, 3] });
    const bn = tf.layers.batchNormalization({ name: 'bn', epsilon: 1e-3 });
    const model = tf.model({ inputs: input, outputs: bn.apply(input) as tf.SymbolicTensor });
    const [gamma, beta, mean, variance] = [[1, 2, 3], [0.5, -1, 0], [0.1, 0.2, -0.3], [1, 4, 0.25]];
    bn.setWeights([tf.tensor1d(gamma), tf.tensor1d(beta), tf.tensor1d(mean), tf.tensor1d(variance)]);
    const compiled = await compileForInference(model, { onMismatch: 'throw' });
    const xs = Array.from({ length: 12 }, (_, i) => i / 3 - 2);
    const got = (compiled.predict(tf.tensor4d(xs, [1, 2, 2, 3])) as tf.Tensor).dataSync();
    xs.forEach((v, i) => {
      const c = i % 3;
      const want = (gamma[c]! * (v - mean[c]!)) / Math.sqrt(variance[c]! + 1e-3) + beta[c]!;
      expect(got[i]).toBeCloseTo(want, 5);
    });
    compiled.dispose();
    model.dispose();
  });
});
