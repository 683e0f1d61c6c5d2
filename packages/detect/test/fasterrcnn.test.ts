import * as tf from '@tensorflow/tfjs';
import { SGD, sgdStep } from '@refconv/engine';
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { saveCheckpoint } from '@refconv/engine';
import { FasterRCNN, detectorWeights, loadDetector, type FasterRCNNOptions } from '../src/index.js';
import { tinyFasterRCNNOptions } from './helpers.js';

const options: FasterRCNNOptions = tinyFasterRCNNOptions();
const geometry = { padded: [64, 64] as [number, number], resized: [[64, 64], [64, 48]] as [number, number][], original: [[64, 64], [128, 96]] as [number, number][] };
const targets = [
  { boxes: new Float32Array([4, 6, 20, 22, 30, 10, 62, 40]), labels: Int32Array.from([1, 0]) },
  { boxes: new Float32Array([10, 10, 40, 50]), labels: Int32Array.from([0]) },
];

describe('Faster R-CNN', () => {
  it('trains (four losses, all finite, total decreasing) without leaking tensors, then detects', () => {
    const det = FasterRCNN.create(options);
    expect(det.model.outputs).toHaveLength(15);
    const images = tf.randomNormal([2, 64, 64, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
    const params = det.trainableWeights().map((w) => ({ name: w.originalName, variable: w.read() as tf.Variable }));
    const sgd = new SGD(params, { momentum: 0.9 });
    const totals: number[] = [];
    let parts: Record<string, number> = {};
    let before = 0;
    for (let i = 0; i < 12; i++) {
      if (i === 2) before = tf.memory().numTensors;
      totals.push(
        sgdStep(sgd, params, 0.02, () => {
          const l = det.losses(images, targets, geometry);
          parts = Object.fromEntries(Object.entries(l).map(([k, v]) => [k, v.dataSync()[0]!]));
          return tf.addN(Object.values(l)) as tf.Scalar;
        }),
      );
    }
    expect(Object.keys(parts).sort()).toEqual(['loss_box_reg', 'loss_classifier', 'loss_objectness', 'loss_rpn_box_reg']);
    for (const v of Object.values(parts)) expect(Number.isFinite(v)).toBe(true);
    expect(parts.loss_classifier).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
    expect(totals[11]!).toBeLessThan(totals[0]!);

    const n0 = tf.memory().numTensors;
    const dets = det.detect(images, geometry);
    expect(tf.memory().numTensors).toBe(n0);
    expect(dets).toHaveLength(2);
    for (const d of dets) {
      expect(d.scores.length).toBeLessThanOrEqual(100);
      for (let i = 1; i < d.scores.length; i++) expect(d.scores[i]!).toBeLessThanOrEqual(d.scores[i - 1]!);
      for (const l of d.labels) expect([0, 1]).toContain(l);
    }
    // second image: resized 64x48 -> original 128x96, boxes within the original frame
    for (const v of dets[1]!.boxes.filter((_, i) => i % 2 === 0)) expect(v).toBeLessThanOrEqual(96 + 1e-3);
    sgd.dispose();

    // checkpoint round trip of both parts (network + box head) gives the same detections
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'detect-frcnn-')), 'f.safetensors');
    const categories = { ids: [1, 2], names: ['a', 'b'] };
    const desc = { kind: 'fasterrcnn', options, categories, resize: { minSize: 64, maxSize: 64 } };
    saveCheckpoint(file, { weights: detectorWeights(det), state: { epoch: 1, step: 0, model: desc } });
    const back = loadDetector(file).det.detect(images, geometry);
    expect(back.map((d) => Array.from(d.labels))).toEqual(dets.map((d) => Array.from(d.labels)));
    back.forEach((d, i) => expect(Array.from(d.scores)).toEqual(Array.from(dets[i]!.scores)));
  });
});
