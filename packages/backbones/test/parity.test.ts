/**
 * Parity with PyTorch: every family's eval-mode logits (and C2..C5 features where recorded)
 * against fixtures produced by tools/make_fixtures.py with torchvision's own classes.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { countParams, fuse } from '@refconv/core';
import { createModel, loadTorchWeights } from '../src/index.js';
import { expectFixtureFeatures, FIXTURES, loadCases, readTensor, relativeError, yieldToEventLoop } from './helpers.js';

afterEach(yieldToEventLoop);

const TOL = 1e-4;
const cases = loadCases();

function run(model: tf.LayersModel, x: tf.Tensor): tf.Tensor[] {
  const y = model.predict(x);
  return Array.isArray(y) ? y : [y];
}

describe('logits match PyTorch (eval mode, 1e-4 relative)', () => {
  for (const [name, c] of Object.entries(cases)) {
    if (name.startsWith('refconv_')) continue;
    const { arch, ...opts } = c.options;
    it(`${name}: ${arch} ${JSON.stringify(opts)}`, () => {
      const model = createModel(arch, opts);
      const { model: loaded, refocused } = loadTorchWeights(model, path.join(FIXTURES, c.weights));
      expect(refocused).toBe(false);
      const x = readTensor(c.io, 'input_nchw', true);
      const want = readTensor(c.io, 'logits');
      const [got] = run(loaded, x);
      expect(relativeError(got!, want)).toBeLessThan(TOL);
      tf.dispose([x, want, got!]);
      model.dispose();
    });
    if (!c.features) continue;
    it(`${name}: C2..C5 features match`, () => {
      const model = createModel(arch, { ...opts, features: true });
      const res = loadTorchWeights(model, path.join(FIXTURES, c.weights), { strict: false });
      // Only the classifier is left over; nothing the feature model needs is missing.
      expect(res.missing).toEqual([]);
      expect(res.unexpected.every((k) => /^(fc|classifier)\./.test(k))).toBe(true);
      expect(res.unexpected.length).toBeGreaterThan(0);
      const x = readTensor(c.io, 'input_nchw', true);
      const outs = run(model, x);
      expectFixtureFeatures(outs, c.io, TOL);
      tf.dispose([x, ...outs]);
      model.dispose();
    });
  }
});

describe('official RefConv checkpoints', () => {
  for (const name of ['refconv_mobilenet_v2_w025', 'refconv_resnet18_w0125']) {
    const c = cases[name]!;
    it(`${name}: loads refocused, matches PyTorch before and after fuse`, () => {
      const { arch, ...opts } = c.options;
      const plain = createModel(arch, opts);
      const res = loadTorchWeights(plain, path.join(FIXTURES, c.weights));
      expect(res.refocused).toBe(true);
      expect(res.model).not.toBe(plain);
      expect(res.loaded.filter((k) => k.endsWith('.convmap.weight')).length).toBeGreaterThan(0);
      const x = readTensor(c.io, 'input_nchw', true);
      const want = readTensor(c.io, 'logits');
      const [got] = run(res.model, x);
      expect(relativeError(got!, want)).toBeLessThan(TOL);
      const fused = fuse(res.model);
      const [gotFused] = run(fused, x);
      expect(relativeError(gotFused!, want)).toBeLessThan(TOL);
      expect(countParams(fused)).toBe(countParams(plain));
      tf.dispose([x, want, got!, gotFused!]);
      [plain, res.model, fused].forEach((m) => m.dispose());
    });
  }
});
