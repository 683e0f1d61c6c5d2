/**
 * timm-style sweep over every registered architecture: parameter count and MACs at the default
 * configuration against the table tools/make_fixtures.py computed from PyTorch, a forward and a
 * backward pass at a small input (shapes, finite values, no leaked tensors), the feature
 * outputs' strides, and the RefConv round trip: refocus -> fuse gives back a plain network with the
 * original parameter count and MACs whose outputs equal the refocused (training-form) network's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { countFlops, countParams, fuse, refConvLayers, refocus } from '@refconv/core';
import { createModel, featureInfo, layerTable, listModels, modelInfo, tableTotals } from '../src/index.js';
import { FIXTURES, relativeError, yieldToEventLoop } from './helpers.js';

afterEach(yieldToEventLoop);

const reference = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'reference-counts.json'), 'utf8')) as Record<string, { params: number; macs: number; inputSize: number }>;

const dilatedReference = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'reference-dilated-macs.json'), 'utf8')) as Record<string, { outputStride: 8 | 16; macs: number }>;

describe('dilated feature extractors (space-to-batch convs)', () => {
  for (const [arch, ref] of Object.entries(dilatedReference)) {
    it(`${arch} at output stride ${ref.outputStride}: per-image MACs equal torchvision's dilated model`, () => {
      const model = createModel(arch, { features: true, outputStride: ref.outputStride });
      expect(tableTotals(layerTable(model)).macs).toBe(ref.macs);
      model.dispose();
    });
  }
});

/** Narrow widths keep the forward/backward and feature checks fast; every block type still runs. */
function smallWidth(arch: string): number {
  return modelInfo(arch).family === 'shufflenet_v2' ? 1 : 0.25;
}

describe('every registered architecture', () => {
  it('has a PyTorch reference row (and vice versa)', () => {
    expect(listModels().sort()).toEqual(Object.keys(reference).sort());
  });

  for (const arch of listModels()) {
    it(`${arch}: params and MACs equal PyTorch's at ${reference[arch]?.inputSize}px`, () => {
      const ref = reference[arch]!;
      const model = createModel(arch, { inputSize: ref.inputSize });
      expect(countParams(model)).toBe(ref.params);
      expect(countFlops(model)).toBe(ref.macs);
      model.dispose();
    });

    it(`${arch}: forward + backward at a small input, finite, no leaks`, () => {
      const info = modelInfo(arch);
      const size = info.defaults.inputSize === 32 ? 32 : 64;
      const model = createModel(arch, { inputSize: size, numClasses: 7, width: smallWidth(arch) });
      const before = tf.memory().numTensors;
      const x = tf.randomNormal([2, size, size, 3]);
      const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar);
      expect(Number.isFinite(value.dataSync()[0]!)).toBe(true);
      const names = Object.keys(grads);
      expect(names.length).toBe(model.trainableWeights.length);
      const allFinite = (t: tf.Tensor) => tf.tidy(() => tf.all(tf.isFinite(t)).dataSync()[0]);
      for (const n of names) expect(allFinite(grads[n]!), n).toBe(1);
      tf.dispose([value, ...Object.values(grads)]);
      const y = model.predict(x) as tf.Tensor;
      expect(y.shape).toEqual([2, 7]);
      expect(allFinite(y)).toBe(1);
      tf.dispose([x, y]);
      expect(tf.memory().numTensors).toBe(before);
      model.dispose();
    });

    it(`${arch}: refocus -> fuse is the plain network again with the refocused outputs`, () => {
      const info = modelInfo(arch);
      const size = info.defaults.inputSize === 32 ? 32 : 64;
      const model = createModel(arch, { inputSize: size, numClasses: 5, width: smallWidth(arch) });
      const refocused = refocus(model, { init: 'default', seed: 11 }); // non-zero transforms
      expect(refConvLayers(refocused).length).toBeGreaterThan(0);
      const fused = fuse(refocused);
      const folded = fuse(refocused, { foldBatchNorm: true });
      expect(refConvLayers(fused)).toHaveLength(0);
      expect(countParams(fused)).toBe(countParams(model));
      expect(countFlops(fused)).toBe(countFlops(model));
      const x = tf.randomNormal([2, size, size, 3], 0, 1, 'float32', 4);
      const [plain, train, deployed, noBn] = [model, refocused, fused, folded].map((m) => m.predict(x) as tf.Tensor);
      expect(relativeError(train!, plain!)).toBeGreaterThan(1e-3); // the transforms change the model
      expect(relativeError(deployed!, train!)).toBeLessThan(1e-5);
      expect(relativeError(noBn!, train!)).toBeLessThan(1e-4);
      tf.dispose([x, plain!, train!, deployed!, noBn!]);
      [model, refocused, fused, folded].forEach((m) => m.dispose());
    });

    if (modelInfo(arch).dilatable) {
      it(`${arch}: features at output strides 32 / 16 / 8`, () => {
        for (const outputStride of [32, 16, 8] as const) {
          const model = createModel(arch, { inputSize: 64, features: true, outputStride, width: smallWidth(arch) });
          const info = featureInfo(model);
          expect(info.map((f) => f.name)).toEqual(['C2', 'C3', 'C4', 'C5']);
          expect(info.map((f) => f.stride)).toEqual([4, 8, 16, 32].map((s) => Math.min(s, outputStride)));
          expect(info.every((f) => f.channels > 0)).toBe(true);
          model.dispose();
        }
      });
    }
  }
});
