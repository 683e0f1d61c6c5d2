import * as tf from '@tensorflow/tfjs';
import { RefConv2D, compileForInference, countFlops, countParams, fuse } from '@refconv/core';
import { SGD, sgdStep, trainableParams } from '@refconv/engine';
import { describe, expect, it } from 'vitest';
import { FasterRCNN, RetinaNet, backboneName, refocusDetector, tinyBackbone, type RetinaNetOptions } from '../src/index.js';
import { expectClose, expectSameDetections, tinyFasterRCNNOptions } from './helpers.js';

const options: RetinaNetOptions = {
  numClasses: 2,
  backbone: { arch: 'tiny', tinyWidths: [4, 8, 8, 8], inputSize: [64, 64] },
  fpnChannels: 8,
  headConvs: 1,
  anchorSizes: [[8], [16], [32], [64], [128]],
  aspectRatios: [1],
  // below the 0.01 prior so that every level yields candidates and NMS has work to do
  scoreThreshold: 0.001,
};

describe('FLOPs of a detector (core countFlops)', () => {
  it('hand-counted backbone; heads shared across levels are counted once per level', () => {
    const bb = tinyBackbone([4, 8, 8, 8], [64, 64]);
    // stem 3x3x3x4 at 32x32, stage1 (a: 3x3x4x4 at 16x16, b: 3x3x4x4 at 16x16), ...
    const hand = 32 * 32 * 108 + 16 * 16 * 144 * 2 + 8 * 8 * (288 + 576) + 4 * 4 * (576 + 576) + 2 * 2 * (576 + 576);
    expect(countFlops(bb)).toBe(hand);
    const det = RetinaNet.create(options);
    // cls head: conv1 (3x3x8x8) + out (3x3x8x2) applied at P3..P7 = 8x8, 4x4, 2x2, 1x1, 1x1
    const levels = 64 + 16 + 4 + 1 + 1;
    const clsHead = levels * (576 + 144);
    const boxHead = levels * (576 + 288);
    const fpn = [8 * 8 * 8, 4 * 4 * 8, 2 * 2 * 8].reduce((s, n) => s + n * 8, 0) + (64 + 16 + 4) * 576 + 1 * 576 + 1 * 576;
    expect(countFlops(det.model)).toBe(hand + clsHead + boxHead + fpn);
  });
});

describe('--refconv at tiny scale', () => {
  it('refocuses only backbone 3x3 convs; fused detector = plain in params/FLOPs and detections = refocused', () => {
    const plain = RetinaNet.create(options);
    const refocused = plain.withModel(refocusDetector(plain.model, { scope: 'backbone', mapK: 3, seed: 1 }));
    const bb = backboneName(refocused.model);
    const refLayers = (refocused.model.getLayer(bb) as tf.LayersModel).layers.filter((l) => l instanceof RefConv2D);
    expect(refLayers).toHaveLength(9); // stem + 2 per stage
    expect(refocused.model.layers.filter((l) => l instanceof RefConv2D)).toHaveLength(0); // FPN / heads untouched

    // one training step so the transforms and the other weights move
    const params = trainableParams(refocused.model);
    const sgd = new SGD(params, { momentum: 0.9 });
    const images = tf.randomNormal([1, 64, 64, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
    const targets = [{ boxes: new Float32Array([8, 8, 30, 40]), labels: Int32Array.from([1]) }];
    sgdStep(sgd, params, 0.01, () => {
      const l = refocused.computeLoss(refocused.forward(images, true), targets, [64, 64]);
      return l.classification.add(l.regression) as tf.Scalar;
    });

    const fused = refocused.withModel(fuse(refocused.model));
    expect(countParams(fused.model)).toBe(countParams(plain.model));
    expect(countFlops(fused.model)).toBe(countFlops(plain.model));
    expect(countFlops(refocused.model)).toBe(countFlops(plain.model));

    const geometry = { padded: [64, 64] as [number, number], resized: [[64, 64]] as [number, number][], original: [[64, 64]] as [number, number][] };
    const cls = refocused.model.getLayer('cls_head_out');
    const fusedCls = fused.model.getLayer('cls_head_out');
    expect(fusedCls.getWeights()[1]!.dataSync()).toEqual(cls.getWeights()[1]!.dataSync());
    expectSameDetections(fused.detect(images, geometry)[0]!, refocused.detect(images, geometry)[0]!, 20);
    const raw = refocused.model.predict(images) as tf.Tensor[];
    const rawF = fused.model.predict(images) as tf.Tensor[];
    raw.forEach((t, i) => expectClose(rawF[i]!.dataSync(), t.dataSync(), 1e-4, 1e-3));
    sgd.dispose();
  });

  it("scope 'all' also refocuses the FPN and head 3x3 convs (shared across levels)", () => {
    const plain = RetinaNet.create(options);
    const all = refocusDetector(plain.model, { scope: 'all', mapK: 3, init: 'zero' });
    const top = all.layers.filter((l) => l instanceof RefConv2D).map((l) => l.name).sort();
    expect(top).toEqual(['box_head_conv1', 'box_head_out', 'cls_head_conv1', 'cls_head_out', 'fpn_layer3', 'fpn_layer4', 'fpn_layer5', 'fpn_p6', 'fpn_p7']);
    // zero init: the refocused network computes exactly the plain one
    const x = tf.randomNormal([1, 64, 64, 3], 0, 1, 'float32', 7);
    const p = plain.model.predict(x) as tf.Tensor[];
    const r = all.predict(x) as tf.Tensor[];
    p.forEach((t, i) => expectClose(r[i]!.dataSync(), t.dataSync(), 1e-5, 1e-4));
  });

  it('Faster R-CNN: refocused backbone trains; fused = plain in params/FLOPs, detections = refocused', () => {
    const plain = FasterRCNN.create(tinyFasterRCNNOptions([64, 64]));
    const refocused = plain.withModel(refocusDetector(plain.model, { scope: 'backbone', mapK: 3, seed: 2 }));
    const bb = backboneName(refocused.model);
    expect((refocused.model.getLayer(bb) as tf.LayersModel).layers.filter((l) => l instanceof RefConv2D)).toHaveLength(9);
    const params = refocused.trainableWeights().map((w) => ({ name: w.originalName, variable: w.read() as tf.Variable }));
    const sgd = new SGD(params, { momentum: 0.9 });
    const images = tf.randomNormal([1, 64, 64, 3], 0, 1, 'float32', 9) as tf.Tensor4D;
    const geometry = { padded: [64, 64] as [number, number], resized: [[64, 64]] as [number, number][], original: [[64, 64]] as [number, number][] };
    const targets = [{ boxes: new Float32Array([8, 8, 30, 40]), labels: Int32Array.from([1]) }];
    const before = refocused.model.getLayer(bb).getWeights().map((w) => w.dataSync().slice());
    sgdStep(sgd, params, 0.01, () => Object.values(refocused.losses(images, targets, geometry)).reduce((a, b) => a.add(b)) as tf.Scalar);
    const after = refocused.model.getLayer(bb).getWeights().map((w) => w.dataSync());
    expect(after.some((w, i) => w.some((v, j) => v !== before[i]![j]))).toBe(true);

    const fused = refocused.withModel(fuse(refocused.model));
    expect(countParams(fused.model)).toBe(countParams(plain.model));
    expect(countFlops(fused.model)).toBe(countFlops(plain.model));
    expectSameDetections(fused.detect(images, geometry)[0]!, refocused.detect(images, geometry)[0]!, 5);
    sgd.dispose();
  });
});

describe('detection through the compiled network (compileForInference, the evaluators\' default)', () => {
  it('RetinaNet and Faster R-CNN: the same detections as the eager network, refocused models included', async () => {
    const geometry = { padded: [64, 64] as [number, number], resized: [[64, 64]] as [number, number][], original: [[64, 64]] as [number, number][] };
    const images = tf.randomUniform([1, 64, 64, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const retina = RetinaNet.create(options);
    const faster = FasterRCNN.create(tinyFasterRCNNOptions([64, 64]));
    for (const det of [retina, retina.withModel(refocusDetector(retina.model, { scope: 'all', mapK: 3, seed: 1 })), faster]) {
      const eager = det.detect(images, geometry)[0]!;
      const compiled = await compileForInference(det.model, { onMismatch: 'throw' });
      expect(compiled.runtime).toBe('graph');
      det.inference = compiled;
      expectSameDetections(det.detect(images, geometry)[0]!, eager, 3);
      det.inference = undefined;
      compiled.dispose();
    }
    images.dispose();
  });
});
