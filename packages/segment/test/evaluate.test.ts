import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { DATASETS, listSamples } from '../src/data/datasets.js';
import { normalise } from '../src/data/transforms.js';
import { evaluateSplit, predictClasses, predictProbs, writePanel, type InferenceOptions } from '../src/evaluate.js';
import { SizedModels, createSegmenter, weightsOf, type BackboneFactory, type SegmenterSpec } from '../src/model/segmenter.js';
import { tinyBackbone } from './tiny-backbone.js';

const factory: BackboneFactory = (spec, size) => tinyBackbone(spec.outputStride, 4, 'backbone', size);
const spec: SegmenterSpec = { arch: 'deeplabv3plus', backbone: 'tiny', backboneWidth: 1, outputStride: 16, numClasses: 11, channels: 8, lowLevelChannels: 4, dropout: 0, aux: false };
const info = DATASETS.camvid;

function models(): SizedModels {
  const m = createSegmenter(spec, [32, 32], factory);
  // make the untrained model's classes vary across the image: larger random classifier weights
  const cls = m.getLayer('decoder.cls');
  cls.setWeights([tf.randomNormal(cls.getWeights()[0]!.shape, 0, 3, 'float32', 11), tf.zeros([11])]);
  const w = weightsOf(m);
  m.dispose();
  return new SizedModels(spec, w, factory);
}

function image(w: number, h: number, seed: number) {
  const data = new Uint8Array(w * h * 3);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    data[i] = s % 256;
  }
  return { width: w, height: h, data };
}

const base: InferenceOptions = { mode: 'whole', baseScale: 1, scales: [1], flip: false, mean: info.mean, std: info.std };

describe('inference', () => {
  const ms = models();

  it('sliding window with a window covering the image equals whole-image inference', async () => {
    const img = image(40, 24, 1);
    const whole = await predictProbs(ms, img, base);
    const slide = await predictProbs(ms, img, { ...base, mode: 'slide', crop: [24, 40], stride: [16, 16] });
    expect(tf.max(tf.abs(tf.sub(whole, slide))).dataSync()[0]).toBeLessThan(1e-6);
    tf.dispose([whole, slide]);
  });

  it('sliding window averages overlapping windows like a naive per-pixel loop', async () => {
    const img = image(40, 24, 2);
    const crop: [number, number] = [16, 24];
    const stride: [number, number] = [10, 12];
    const got = await predictProbs(ms, img, { ...base, mode: 'slide', crop, stride });
    // naive: every window of the mmseg grid, logits summed per pixel, divided by the count
    const x = tf.tensor4d(normalise(img, info.mean, info.std), [1, 24, 40, 3]);
    const sum = new Float64Array(24 * 40 * 11);
    const count = new Float64Array(24 * 40);
    const rows = Math.floor(Math.max(24 - crop[0] + stride[0] - 1, 0) / stride[0]) + 1;
    const cols = Math.floor(Math.max(40 - crop[1] + stride[1] - 1, 0) / stride[1]) + 1;
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
      const y2 = Math.min(r * stride[0] + crop[0], 24);
      const x2 = Math.min(c * stride[1] + crop[1], 40);
      const y1 = Math.max(y2 - crop[0], 0);
      const x1 = Math.max(x2 - crop[1], 0);
      const out = ms.get(crop[0], crop[1]).predict(tf.slice(x, [0, y1, x1, 0], [1, crop[0], crop[1], 3])) as tf.Tensor;
      const v = out.dataSync();
      for (let yy = 0; yy < crop[0]; yy++) for (let xx = 0; xx < crop[1]; xx++) {
        const p = (y1 + yy) * 40 + x1 + xx;
        count[p]! += 1;
        for (let k = 0; k < 11; k++) sum[p * 11 + k]! += v[(yy * crop[1] + xx) * 11 + k]!;
      }
    }
    const logits = tf.tensor4d(Float32Array.from(sum.map((s, i) => s / count[Math.floor(i / 11)]!)), [1, 24, 40, 11]);
    const expected = tf.softmax(logits).squeeze([0]);
    expect(tf.max(tf.abs(tf.sub(got, expected))).dataSync()[0]).toBeLessThan(1e-5);
    expect(Math.min(...count)).toBeGreaterThanOrEqual(1);
  });

  it('flip averages the prediction of the mirrored image mirrored back', async () => {
    const img = image(32, 24, 3);
    const mirrored = { ...img, data: new Uint8Array(img.data.length) };
    for (let y = 0; y < 24; y++) for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) mirrored.data[(y * 32 + (31 - x)) * 3 + c] = img.data[(y * 32 + x) * 3 + c]!;
    const a = await predictProbs(ms, img, base);
    const b = await predictProbs(ms, mirrored, base);
    const both = await predictProbs(ms, img, { ...base, flip: true });
    const expected = tf.div(tf.add(a, tf.reverse(b, 1)), 2);
    expect(tf.max(tf.abs(tf.sub(both, expected))).dataSync()[0]).toBeLessThan(1e-5);
  });
});

describe('evaluateSplit', () => {
  it('accumulates one confusion matrix over the split and writes palette PNGs of the predictions', async () => {
    const ms = models();
    const root = mkdtempSync(join(tmpdir(), 'evalcam-'));
    mkdirSync(join(root, 'val'));
    mkdirSync(join(root, 'valannot'));
    const lines: string[] = [];
    const masks: Uint8Array[] = [];
    const imgs = [image(36, 28, 5), image(36, 28, 6)];
    for (let i = 0; i < 2; i++) {
      await sharp(imgs[i]!.data, { raw: { width: 36, height: 28, channels: 3 } }).png().toFile(join(root, 'val', `f${i}.png`));
      const m = Uint8Array.from({ length: 36 * 28 }, (_, p) => (p * (i + 3)) % 12); // ids 0..11, 11 = void
      masks.push(m);
      await sharp(m, { raw: { width: 36, height: 28, channels: 1 } }).toColourspace('b-w').png().toFile(join(root, 'valannot', `f${i}.png`));
      lines.push(`/x/val/f${i}.png /x/valannot/f${i}.png`);
    }
    writeFileSync(join(root, 'val.txt'), lines.join('\n'));
    const saveDir = join(root, 'pred');
    const { metrics, confusion } = await evaluateSplit(ms, listSamples('camvid', root, { split: 'val' }), { ...base, info, saveDir, progress: false });
    // independent tally: predicted classes per image vs masks, void skipped, naive loop
    const counts = new Float64Array(121);
    for (let i = 0; i < 2; i++) {
      const pred = await predictClasses(ms, imgs[i]!, base);
      const png = await sharp(join(saveDir, `f${i}.png`)).raw().toBuffer();
      for (let p = 0; p < pred.length; p++) {
        expect([png[p * 3], png[p * 3 + 1], png[p * 3 + 2]]).toEqual([...info.palette[pred[p]!]!]);
        if (masks[i]![p] === 11) continue;
        counts[masks[i]![p]! * 11 + pred[p]!]! += 1;
      }
    }
    expect(Array.from(confusion.matrix)).toEqual(Array.from(counts));
    expect(metrics.numPixels).toBe(2 * 36 * 28 - masks.reduce((n, m) => n + m.filter((v) => v === 11).length, 0));
    // a second pass (models already built) leaves no tensors behind, with slide + multi-scale + flip
    const samples = listSamples('camvid', root, { split: 'val' });
    const slide = { ...base, info, progress: false, mode: 'slide' as const, crop: [16, 16] as [number, number], stride: [12, 12] as [number, number], scales: [0.75, 1], flip: true };
    await evaluateSplit(ms, samples, slide);
    const before = tf.memory().numTensors;
    await evaluateSplit(ms, samples, slide);
    expect(tf.memory().numTensors).toBe(before);
    ms.dispose();
  });
});

describe('writePanel', () => {
  it('puts image | ground truth | prediction side by side in the palette, ignore black', async () => {
    const img = image(4, 2, 7);
    const gt = new Uint8Array([0, 1, 255, 3, 4, 5, 6, 7]);
    const pred = new Uint8Array([10, 9, 8, 7, 6, 5, 4, 3]);
    const file = join(mkdtempSync(join(tmpdir(), 'panel-')), 'p.png');
    await writePanel(file, img, gt, pred, info.palette);
    const { data, info: meta } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
    expect([meta.width, meta.height]).toEqual([12, 2]);
    const px = (x: number, y: number) => Array.from(data.subarray((y * 12 + x) * 3, (y * 12 + x) * 3 + 3));
    expect(px(0, 0)).toEqual(Array.from(img.data.subarray(0, 3)));
    expect(px(4, 0)).toEqual([...info.palette[0]!]);
    expect(px(6, 0)).toEqual([0, 0, 0]);
    expect(px(8, 1)).toEqual([...info.palette[6]!]);
  });
});
