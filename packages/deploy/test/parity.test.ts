/**
 * Parity: onnxruntime-node on the exported file vs tfjs on the same fused, BN-folded model.
 * BN statistics are randomised before fusing so the folding is not an identity, and inputs are
 * random, so a wrong layout, kernel order, pad or channel order shows as a large error.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { createModel } from '@refconv/backbones';
import { fuse } from '@refconv/core';
import { createSession, exportOnnx, runSession } from '../src/index.js';
import { relError } from './rel-error.js';

function randomiseBatchNorm(model: tf.LayersModel, seed: number): void {
  let s = seed;
  const rnd = (): number => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const ws = layer.getWeights();
    const names = layer.weights.map((v) => v.originalName.split('/').pop());
    layer.setWeights(
      ws.map((w, i) => {
        const n = w.size;
        const vals = Float32Array.from({ length: n }, () => {
          const u = rnd();
          switch (names[i]) {
            case 'gamma': return 0.5 + u;
            case 'beta': return u - 0.5;
            case 'moving_mean': return (u - 0.5) * 0.4;
            default: return 0.5 + u; // moving_variance
          }
        });
        return tf.tensor(vals, w.shape);
      }),
    );
  }
}


const CASES: { arch: string; size: number; width?: number }[] = [
  { arch: 'resnet18', size: 64, width: 0.25 },
  { arch: 'resnet50', size: 64, width: 0.125 },
  { arch: 'cifar_resnet20', size: 32 },
  { arch: 'mobilenet_v1', size: 64, width: 0.25 },
  { arch: 'mobilenet_v2', size: 64, width: 0.35 },
  { arch: 'mobilenet_v3_large', size: 64, width: 0.5 },
  { arch: 'mobilenet_v3_small', size: 64, width: 0.5 },
  { arch: 'shufflenet_v2_x0_5', size: 64 },
];

describe('ONNX export parity with onnxruntime-node', () => {
  for (const { arch, size, width } of CASES) {
    for (const layout of ['NCHW', 'NHWC'] as const) {
      if (layout === 'NHWC' && arch !== 'resnet18' && arch !== 'shufflenet_v2_x0_5') continue;
      it(`${arch} ${layout}: onnxruntime equals tfjs (1e-4 relative), batch 1 and 3`, async () => {
        const model = createModel(arch as never, { inputSize: size, numClasses: 10, ...(width ? { width } : {}) } as never);
        randomiseBatchNorm(model, 7);
        const fused = fuse(model, { foldBatchNorm: true });
        expect(fused.layers.some((l) => l.getClassName() === 'BatchNormalization')).toBe(false);
        const bytes = exportOnnx(fused, { layout, metadata: { arch, mean: [0.5], std: [0.25] } });
        const session = await createSession(bytes);
        for (const batch of [1, 3]) {
          const xs = tf.randomNormal([batch, size, size, model.inputs[0].shape[3] as number], 0, 1, 'float32', 11 + batch);
          const ref = tf.tidy(() => (fused.predict(xs) as tf.Tensor).dataSync() as Float32Array).slice();
          const feed = layout === 'NCHW' ? tf.tidy(() => tf.transpose(xs, [0, 3, 1, 2]).dataSync() as Float32Array).slice() : (xs.dataSync() as Float32Array).slice();
          const dims = layout === 'NCHW' ? [batch, xs.shape[3] as number, size, size] : ([...xs.shape] as number[]);
          const out = await runSession(session, feed, dims);
          expect(Object.keys(out)).toEqual(['logits']);
          expect(out.logits.dims).toEqual([batch, 10]);
          const err = relError(out.logits.data, ref);
          console.log(`parity ${arch} ${layout} batch ${batch}: max rel err ${err.toExponential(2)}`);
          expect(err).toBeLessThan(1e-4);
          xs.dispose();
        }
        await session.release();
        model.dispose();
        fused.dispose();
      });
    }
  }
});

const FEATURE_CASES: { arch: string; outputStride: 8 | 16 | 32; width?: number }[] = [
  { arch: 'resnet18', outputStride: 16, width: 0.25 },
  { arch: 'resnet50', outputStride: 8, width: 0.125 },
  { arch: 'mobilenet_v2', outputStride: 16, width: 0.35 },
  { arch: 'mobilenet_v3_large', outputStride: 16, width: 0.5 },
  { arch: 'mobilenet_v3_large', outputStride: 8, width: 0.5 },
  { arch: 'shufflenet_v2_x0_5', outputStride: 16 },
];

describe('ONNX export parity: multi-scale features (C2..C5) and dilated (output stride 8/16) backbones', () => {
  for (const { arch, outputStride, width } of FEATURE_CASES) {
    it(`${arch} features, output stride ${outputStride}: every output equals tfjs (1e-4 relative)`, async () => {
      const size = 64;
      const model = createModel(arch as never, { inputSize: size, features: true, outputStride, ...(width ? { width } : {}) } as never);
      randomiseBatchNorm(model, 5);
      const fused = fuse(model, { foldBatchNorm: true });
      const bytes = exportOnnx(fused);
      const session = await createSession(bytes);
      const batch = 2;
      const xs = tf.randomNormal([batch, size, size, 3], 0, 1, 'float32', 3);
      const refs = (fused.predict(xs) as tf.Tensor[]).map((t) => {
        const nchw = tf.transpose(t, [0, 3, 1, 2]);
        const r = { dims: nchw.shape, data: (nchw.dataSync() as Float32Array).slice() };
        nchw.dispose();
        t.dispose();
        return r;
      });
      const feed = tf.tidy(() => tf.transpose(xs, [0, 3, 1, 2]).dataSync() as Float32Array).slice();
      const out = await runSession(session, feed, [batch, 3, size, size]);
      const names = Object.keys(out);
      expect(names).toEqual(fused.outputs.map((o) => o.sourceLayer.name));
      const errs = names.map((n, i) => {
        expect(out[n].dims).toEqual(refs[i].dims);
        return relError(out[n].data, refs[i].data);
      });
      console.log(`parity ${arch} features os${outputStride}: max rel err per output ${errs.map((e) => e.toExponential(2)).join(' ')}`);
      for (const e of errs) expect(e).toBeLessThan(1e-4);
      xs.dispose();
      await session.release();
      model.dispose();
      fused.dispose();
    });
  }
});

describe('ONNX export parity: NHWC layout with 4-D outputs', () => {
  it('mobilenet_v3_small features, output stride 16, NHWC in and out equals tfjs (1e-4 relative)', async () => {
    const size = 48;
    const model = createModel('mobilenet_v3_small', { inputSize: size, features: true, outputStride: 16, width: 0.5 });
    randomiseBatchNorm(model, 13);
    const fused = fuse(model, { foldBatchNorm: true });
    const names = ['C2', 'C3', 'C4', 'C5'];
    const session = await createSession(exportOnnx(fused, { layout: 'NHWC', outputNames: names }));
    const xs = tf.randomNormal([2, size, size, 3], 0, 1, 'float32', 21);
    const refs = (fused.predict(xs) as tf.Tensor[]).map((t) => ({ dims: t.shape, data: (t.dataSync() as Float32Array).slice() }));
    const out = await runSession(session, (xs.dataSync() as Float32Array).slice(), [2, size, size, 3]);
    expect(Object.keys(out)).toEqual(names);
    names.forEach((n, i) => {
      expect(out[n].dims).toEqual(refs[i].dims);
      expect(relError(out[n].data, refs[i].data)).toBeLessThan(1e-4);
    });
    xs.dispose();
    await session.release();
    model.dispose();
    fused.dispose();
  });
});
