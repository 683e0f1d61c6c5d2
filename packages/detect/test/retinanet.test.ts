import * as tf from '@tensorflow/tfjs';
import { SGD, sgdStep, trainableParams } from '@refconv/engine';
import { describe, expect, it } from 'vitest';
import { RetinaNet, type RetinaNetOptions } from '../src/index.js';
import { expectClose } from './helpers.js';

const tiny: RetinaNetOptions = {
  numClasses: 2,
  backbone: { arch: 'tiny', tinyWidths: [4, 8, 8, 8] },
  fpnChannels: 8,
  headConvs: 1,
  anchorSizes: [[8], [16], [32], [64], [128]],
  aspectRatios: [1],
  freezeBatchNorm: false,
};

/** Naive JS focal loss and L1 loss over torchvision's definitions, with naive IoU loops. */
function naiveLoss(cls: number[][], box: number[][], anchors: Float32Array, gtBoxes: number[][], gtLabels: number[]) {
  const T = cls.length;
  const K = cls[0]!.length;
  const iou = (a: number[], b: number[]) => {
    const w = Math.max(0, Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!));
    const h = Math.max(0, Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!));
    const area = (c: number[]) => (c[2]! - c[0]!) * (c[3]! - c[1]!);
    return (w * h) / (area(a) + area(b) - w * h);
  };
  const A = (p: number) => Array.from(anchors.subarray(4 * p, 4 * p + 4));
  const q = gtBoxes.map((g) => Array.from({ length: T }, (_, p) => iou(g, A(p))));
  const match: number[] = [];
  for (let p = 0; p < T; p++) {
    let best = 0;
    for (let g = 1; g < gtBoxes.length; g++) if (q[g]![p]! > q[best]![p]!) best = g;
    const v = q[best]![p]!;
    match.push(v >= 0.5 ? best : v >= 0.4 ? -2 : -1);
    for (let g = 0; g < gtBoxes.length; g++) if (q[g]![p] === Math.max(...q[g]!)) match[p] = best;
  }
  const fg = match.filter((m) => m >= 0).length;
  let clsLoss = 0;
  let boxLoss = 0;
  for (let p = 0; p < T; p++) {
    if (match[p] === -2) continue;
    for (let k = 0; k < K; k++) {
      const t = match[p]! >= 0 && gtLabels[match[p]!] === k ? 1 : 0;
      const x = cls[p]![k]!;
      const s = 1 / (1 + Math.exp(-x));
      const ce = -(t * Math.log(s) + (1 - t) * Math.log(1 - s));
      const pt = s * t + (1 - s) * (1 - t);
      clsLoss += (t ? 0.25 : 0.75) * ce * (1 - pt) ** 2;
    }
    if (match[p]! >= 0) {
      const a = A(p);
      const g = gtBoxes[match[p]!]!;
      const [aw, ah] = [a[2]! - a[0]!, a[3]! - a[1]!];
      const [gw, gh] = [g[2]! - g[0]!, g[3]! - g[1]!];
      const target = [(g[0]! + gw / 2 - a[0]! - aw / 2) / aw, (g[1]! + gh / 2 - a[1]! - ah / 2) / ah, Math.log(gw / aw), Math.log(gh / ah)];
      target.forEach((v, c) => (boxLoss += Math.abs(box[p]![c]! - v)));
    }
  }
  return { cls: clsLoss / Math.max(1, fg), box: boxLoss / Math.max(1, fg), fg };
}

describe('RetinaNet', () => {
  it('outputs one level per P3..P7 with 9 torchvision anchors per location and the prior bias', () => {
    const det = RetinaNet.create({ numClasses: 3, backbone: { arch: 'tiny', tinyWidths: [4, 8, 8, 8] }, fpnChannels: 8, headConvs: 1 });
    const out = det.forward(tf.zeros([1, 64, 96, 3]), false);
    expect(out.grids).toEqual([[8, 12], [4, 6], [2, 3], [1, 2], [1, 1]]);
    const T = (96 + 24 + 6 + 2 + 1) * 9;
    expect(out.cls.shape).toEqual([1, T, 3]);
    expect(out.box.shape).toEqual([1, T, 4]);
    const bias = det.model.getLayer('cls_head_out').getWeights()[1]!.dataSync();
    expectClose(bias, new Array(27).fill(-Math.log(99)), 1e-6);
    tf.dispose([out.cls, out.box]);
    det.dispose();
  });

  it('losses equal a naive loop over torchvision definitions', () => {
    const det = RetinaNet.create(tiny);
    const images = tf.randomNormal([1, 64, 64, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const out = det.forward(images, false);
    const gtBoxes = [
      [4, 6, 20, 22],
      [30, 10, 62, 40],
    ];
    const targets = [{ boxes: new Float32Array(gtBoxes.flat()), labels: Int32Array.from([1, 0]) }];
    const { classification, regression } = det.computeLoss(out, targets, [64, 64]);
    const anchors = det.anchors([64, 64], out.grids).anchors;
    const ref = naiveLoss(out.cls.arraySync()[0]!, out.box.arraySync()[0]!, anchors, gtBoxes, [1, 0]);
    expect(ref.fg).toBeGreaterThan(1);
    expectClose([classification.dataSync()[0]!, regression.dataSync()[0]!], [ref.cls, ref.box], 1e-4, 1e-4);
    tf.dispose([out.cls, out.box, classification, regression, images]);
    det.dispose();
  });

  it('an image without boxes has only background loss; box loss is 0', () => {
    const det = RetinaNet.create(tiny);
    const out = det.forward(tf.zeros([1, 32, 32, 3]), false);
    const l = det.computeLoss(out, [{ boxes: new Float32Array(0), labels: new Int32Array(0) }], [32, 32]);
    expect(l.regression.dataSync()[0]).toBe(0);
    expect(l.classification.dataSync()[0]).toBeGreaterThan(0);
    det.dispose();
  });

  it('detect: decodes the top anchor, clips, removes duplicates per class, maps to the original size', () => {
    const det = RetinaNet.create({ ...tiny, numClasses: 1 });
    // Zero all head weights, then put a high bias -> every anchor scores sigmoid(b); codes 0
    for (const name of ['cls_head_out', 'box_head_out']) {
      const layer = det.model.getLayer(name);
      layer.setWeights(layer.getWeights().map((w) => tf.zerosLike(w)));
    }
    const cls = det.model.getLayer('cls_head_out');
    cls.setWeights([cls.getWeights()[0]!, tf.tensor1d([3])]);
    const dets = det.detect(tf.zeros([1, 32, 32, 3]) as tf.Tensor4D, { padded: [32, 32], resized: [[32, 32]], original: [[64, 128]] });
    // anchors are identical at every score, so NMS keeps the non-overlapping ones; the first is P3 (0,0): [-4,-4,4,4] clipped
    const d = dets[0]!;
    expect(d.scores[0]).toBeCloseTo(1 / (1 + Math.exp(-3)), 5);
    expect(Array.from(d.boxes.subarray(0, 4))).toEqual([0, 0, 4 * 4, 4 * 2]);
    for (let i = 0; i < d.scores.length; i++) expect(d.labels[i]).toBe(0);
    det.dispose();
  });

  it('training steps reduce the loss on one image and do not leak tensors', () => {
    const det = RetinaNet.create(tiny);
    // The tiny backbone's convs draw unseeded He-normal weights: re-draw them seeded, so the run is
    // the same every time (unseeded, the 20-step loss ratio wandered and once missed 0.8).
    let seed = 100;
    const reseed = (layers: tf.layers.Layer[]): void => layers.forEach((layer) => {
      const nested = (layer as unknown as { layers?: tf.layers.Layer[] }).layers;
      if (nested) return reseed(nested);
      if (layer.name.endsWith('_conv')) layer.setWeights(layer.getWeights().map((w) => tf.initializers.heNormal({ seed: seed++ }).apply(w.shape) as tf.Tensor));
    });
    reseed(det.model.layers);
    expect(seed).toBeGreaterThan(100);
    const images = tf.randomNormal([2, 64, 64, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const targets = [
      { boxes: new Float32Array([4, 6, 20, 22, 30, 10, 62, 40]), labels: Int32Array.from([1, 0]) },
      { boxes: new Float32Array([10, 10, 50, 50]), labels: Int32Array.from([0]) },
    ];
    const params = trainableParams(det.model);
    const sgd = new SGD(params, { momentum: 0.9 });
    const losses: number[] = [];
    let before = 0;
    for (let i = 0; i < 20; i++) {
      if (i === 2) before = tf.memory().numTensors;
      losses.push(
        sgdStep(sgd, params, 0.05, () => {
          const out = det.forward(images, true);
          const l = det.computeLoss(out, targets, [64, 64]);
          return l.classification.add(l.regression) as tf.Scalar;
        }),
      );
    }
    expect(tf.memory().numTensors).toBe(before);
    if (process.env.SHOW_LOSSES) console.log(losses.map((l) => l.toFixed(4)).join(' '));
    // The mean of the last five steps, not the last step alone: momentum SGD on one batch
    // oscillates by ~10 % from step to step, which float rounding can shift from host to host.
    const lastFive = losses.slice(15).reduce((a, b) => a + b, 0) / 5;
    expect(lastFive).toBeLessThan(losses[0]! * 0.8);
    sgd.dispose();
    det.dispose();
  });
});

describe('RetinaNet parts are injected, with defaults', () => {
  it('uses the given anchor generator, box coder and matcher (kept by withModel), and refuses a generator that disagrees with the heads', async () => {
    const { AnchorGenerator, BoxCoder, Matcher } = await import('../src/index.js');
    const anchorGenerator = new AnchorGenerator([[10], [20], [40], [80], [160]], [[1]]);
    const boxCoder = new BoxCoder([2, 2, 1, 1]);
    const matcher = new Matcher({ highThreshold: 0.7, lowThreshold: 0.3, allowLowQualityMatches: false });
    const det = RetinaNet.create(tiny, undefined, { anchorGenerator, boxCoder, matcher });
    expect(det.anchorGenerator).toBe(anchorGenerator);
    expect(det.boxCoder).toBe(boxCoder);
    expect(det.matcher).toBe(matcher);
    const again = det.withModel(det.model);
    expect([again.anchorGenerator, again.boxCoder, again.matcher]).toEqual([anchorGenerator, boxCoder, matcher]);
    // anchors come from the injected generator: a 64x64 image, P3 grid 8x8 -> first anchor centred at (0, 0), size 10
    const { anchors } = det.anchors([64, 64], [[8, 8], [4, 4], [2, 2], [1, 1], [1, 1]]);
    expect(Array.from(anchors.subarray(0, 4))).toEqual([-5, -5, 5, 5]);
    const defaults = RetinaNet.create(tiny);
    expect(defaults.matcher).not.toBe(matcher);
    expect(() => new RetinaNet(det.model, tiny, { anchorGenerator: new AnchorGenerator([[8], [16], [32], [64], [128]], [[0.5, 1]]) })).toThrow(
      /anchor generator makes \[2,2,2,2,2\] anchors per location but the heads predict 1/,
    );
    det.dispose();
    defaults.dispose();
    again.dispose();
  });
});
