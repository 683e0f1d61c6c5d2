/**
 * Parity of the detector and segmenter network parts: backbone (a nested model) + FPN / ASPP +
 * heads up to their raw outputs, exported after `fuse(model, { foldBatchNorm: true })` and run in
 * onnxruntime-node, against tfjs' `predict` of the same fused model. Shared head layers (RetinaNet's
 * towers, the RPN head, applied to every pyramid level), nearest 2x upsampling (FPN), bilinear
 * half-pixel resizes and image pooling (ASPP, the V3+ decoder, the logits) are what this adds to the
 * backbone tests. BN statistics and the heads' weights are randomised so no mapping error hides.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { createModel } from '@refconv/backbones';
import { fuse } from '@refconv/core';
import { buildBoxHead, buildFasterRCNNNetwork, buildRetinaNetModel, resolveFasterRCNNOptions } from '@refconv/detect';
import { buildSegmenter } from '@refconv/segment';
import { createSession, exportOnnx, runSession } from '../src/index.js';
import { relError } from './rel-error.js';


/** Every leaf layer, descending into nested models (the backbone). */
function leaves(model: tf.LayersModel): tf.layers.Layer[] {
  return model.layers.flatMap((l) => (l instanceof tf.LayersModel ? leaves(l) : [l]));
}

/** Random BN statistics and random (non-zero) biases, seeded, so folding and bias mapping are tested. */
function randomise(model: tf.LayersModel, seed: number): void {
  let s = seed;
  const rnd = (): number => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (const layer of leaves(model)) {
    const ws = layer.getWeights();
    if (ws.length === 0) continue;
    const names = layer.weights.map((v) => v.originalName.split('/').pop());
    const isBn = layer.getClassName() === 'BatchNormalization';
    layer.setWeights(
      ws.map((w, i) => {
        const n = names[i];
        if (!isBn && n !== 'bias') return w.clone();
        const vals = Float32Array.from({ length: w.size }, () => {
          const u = rnd();
          if (n === 'bias' || n === 'beta') return u - 0.5;
          if (n === 'moving_mean') return (u - 0.5) * 0.4;
          return 0.5 + u; // gamma, moving_variance
        });
        return tf.tensor(vals, w.shape);
      }),
    );
  }
}

/** Runs the fused model in tfjs and the exported file in onnxruntime-node on the same NCHW batch; max rel err per output. */
async function compare(fused: tf.LayersModel, outputNames: string[] | undefined, inShape: [number, number, number], batch = 2): Promise<Record<string, number>> {
  const bytes = exportOnnx(fused, outputNames ? { outputNames } : {});
  const session = await createSession(bytes);
  const [h, w, c] = inShape;
  const xs = tf.randomNormal([batch, h, w, c], 0, 1, 'float32', 17);
  const preds = fused.predict(xs);
  const refs = (Array.isArray(preds) ? preds : [preds]).map((t) => {
    const r = tf.tidy(() => (t.rank === 4 ? tf.transpose(t, [0, 3, 1, 2]) : t.clone()));
    const out = { dims: r.shape, data: (r.dataSync() as Float32Array).slice() };
    r.dispose();
    t.dispose();
    return out;
  });
  const feed = tf.tidy(() => tf.transpose(xs, [0, 3, 1, 2]).dataSync() as Float32Array).slice();
  const out = await runSession(session, feed, [batch, c, h, w]);
  await session.release();
  xs.dispose();
  const names = Object.keys(out);
  expect(names.length).toBe(refs.length);
  if (outputNames) expect(names).toEqual(outputNames);
  const errs: Record<string, number> = {};
  names.forEach((n, i) => {
    expect(out[n].dims, `output '${n}' shape`).toEqual(refs[i].dims);
    errs[n] = relError(out[n].data, refs[i].data);
  });
  return errs;
}

const fmt = (errs: Record<string, number>): string => Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ');
const worst = (errs: Record<string, number>): number => Math.max(...Object.values(errs));

describe('ONNX export of detector network parts (backbone + FPN + heads, raw outputs)', () => {
  it('RetinaNet (ResNet-18 x0.25, FPN P3..P7, shared cls / box towers), 64 px: every output equals tfjs (1e-4 relative)', async () => {
    const size = 64;
    const model = buildRetinaNetModel({ numClasses: 3, backbone: { arch: 'resnet18', width: 0.25, inputSize: [size, size] }, fpnChannels: 16, headConvs: 2, seed: 3 });
    randomise(model, 5);
    const fused = fuse(model, { foldBatchNorm: true });
    expect(leaves(fused).some((l) => l.getClassName() === 'BatchNormalization')).toBe(false);
    const names = [...[3, 4, 5, 6, 7].map((l) => `cls_p${l}`), ...[3, 4, 5, 6, 7].map((l) => `box_p${l}`)];
    const errs = await compare(fused, names, [size, size, 3]);
    console.log(`parity retinanet resnet18 64px: max rel err ${fmt(errs)}; worst ${worst(errs).toExponential(2)}`);
    expect(worst(errs)).toBeLessThan(1e-4);
    model.dispose();
    fused.dispose();
  });

  it('Faster R-CNN (MobileNetV2 x0.35, FPN P2..P6 + max-pool level, shared RPN head) and its box head, 64 px: equal tfjs (1e-4 relative)', async () => {
    const size = 64;
    const opts = { numClasses: 4, backbone: { arch: 'mobilenet_v2', width: 0.35, inputSize: [size, size] as [number, number] }, fpnChannels: 16, representationSize: 32, seed: 1 };
    const model = buildFasterRCNNNetwork(opts);
    randomise(model, 9);
    const fused = fuse(model, { foldBatchNorm: true });
    const errs = await compare(fused, undefined, [size, size, 3]);
    console.log(`parity fasterrcnn mobilenet_v2 64px network: max rel err ${fmt(errs)}; worst ${worst(errs).toExponential(2)}`);
    expect(worst(errs)).toBeLessThan(1e-4);
    // the box head after MultiScaleRoIAlign: [K, 7, 7, C] -> Flatten (NHWC order) -> fc6 -> fc7 -> class logits, deltas
    const head = buildBoxHead(resolveFasterRCNNOptions(opts));
    randomise(head, 11);
    const headErrs = await compare(head, ['class_logits', 'box_regression'], [7, 7, 16], 5);
    console.log(`parity fasterrcnn box head: max rel err ${fmt(headErrs)}`);
    expect(worst(headErrs)).toBeLessThan(1e-4);
    model.dispose();
    fused.dispose();
    head.dispose();
  });
});

describe('ONNX export of segmenter networks (backbone + ASPP + head, logits at input size)', () => {
  const CASES = [
    { arch: 'deeplabv3plus' as const, backbone: 'resnet18', width: 0.25, outputStride: 16 as const, aux: false, size: 64 },
    { arch: 'deeplabv3' as const, backbone: 'mobilenet_v3_large', width: 0.5, outputStride: 8 as const, aux: true, size: 48 },
  ];
  for (const c of CASES) {
    it(`${c.arch} (${c.backbone} x${c.width}, output stride ${c.outputStride}${c.aux ? ', aux head' : ''}), ${c.size} px: logits equal tfjs (1e-4 relative)`, async () => {
      const backbone = createModel(c.backbone as never, { features: true, outputStride: c.outputStride, inputSize: c.size, width: c.width } as never);
      const model = buildSegmenter({ arch: c.arch, numClasses: 5, backbone, outputStride: c.outputStride, channels: 16, aux: c.aux, inputSize: [c.size, c.size] });
      randomise(model, 21);
      const fused = fuse(model, { foldBatchNorm: true });
      const errs = await compare(fused, undefined, [c.size, c.size, 3]);
      console.log(`parity ${c.arch} ${c.backbone} os${c.outputStride} ${c.size}px: max rel err ${fmt(errs)}`);
      expect(Object.keys(errs)).toEqual(c.aux ? ['logits', 'aux_logits'] : ['logits']);
      expect(worst(errs)).toBeLessThan(1e-4);
      model.dispose();
      fused.dispose();
    });
  }
});
