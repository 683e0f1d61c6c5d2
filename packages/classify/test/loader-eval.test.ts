import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import type { Split } from '../src/data/dataset.js';
import { BatchLoader } from '../src/data/loader.js';
import type { EvalTransformSpec, TrainTransformSpec } from '../src/data/transforms.js';
import { evaluate } from '../src/evaluate.js';
import { tmpDir, writeImage } from './helpers.js';

const evalSpec: EvalTransformSpec = { kind: 'eval', resize: 4, crop: 4, channels: 1, mean: [0], std: [1] };
const trainSpec: TrainTransformSpec = { kind: 'train', size: 4, scale: [0.5, 1], ratio: [0.75, 1.33], flipProb: 0.5, channels: 1, mean: [0], std: [1] };

/** 4x4 grey images: image i has all pixels = i * 10. */
function rawSplit(n: number): Split {
  return {
    size: n,
    source: (i) => ({ data: new Uint8Array(16).fill(i * 10), width: 4, height: 4, channels: 1 }),
    label: (i) => i % 3,
    describe: (i) => `raw[${i}]`,
  };
}

const loaders: BatchLoader[] = [];
afterAll(async () => Promise.all(loaders.map((l) => l.close())));
const mk = (o: ConstructorParameters<typeof BatchLoader>[0]) => {
  const l = new BatchLoader(o);
  loaders.push(l);
  return l;
};

describe('BatchLoader', () => {
  it('batches in the given order; workers and main thread give identical augmented pixels', async () => {
    const split = rawSplit(10);
    const order = [9, 3, 5, 0, 1, 2, 4, 6, 7, 8];
    const collect = async (l: BatchLoader, spec: TrainTransformSpec | EvalTransformSpec) => {
      const out: { x: number[]; labels: number[]; indices: number[] }[] = [];
      for await (const b of l.batches(split, order, spec, (p) => 1000 + p)) out.push({ x: Array.from(b.x), labels: Array.from(b.labels), indices: b.indices });
      return out;
    };
    const main = await collect(mk({ batchSize: 4, workers: 0 }), evalSpec);
    expect(main.map((b) => b.indices)).toEqual([[9, 3, 5, 0], [1, 2, 4, 6], [7, 8]]);
    expect(main[0]!.labels).toEqual([0, 0, 2, 0]);
    expect(main[0]!.x.slice(0, 16)).toEqual(new Array(16).fill(90 / 255).map((v) => expect.closeTo(v, 6)));
    const a = await collect(mk({ batchSize: 4, workers: 0 }), trainSpec);
    const b = await collect(mk({ batchSize: 4, workers: 2 }), trainSpec);
    expect(b).toEqual(a);
  });

  it('stops on a corrupt file naming it, or skips and records it with skipBad', async () => {
    const dir = tmpDir('cls-bad-');
    await writeImage(path.join(dir, 'good.png'), 100, 8);
    fs.writeFileSync(path.join(dir, 'broken.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
    const files = [path.join(dir, 'good.png'), path.join(dir, 'broken.jpg'), path.join(dir, 'good.png')];
    const split: Split = { size: 3, source: (i) => files[i]!, label: (i) => i, describe: (i) => files[i]! };
    const spec: EvalTransformSpec = { kind: 'eval', resize: 8, crop: 8, channels: 3, mean: [0, 0, 0], std: [1, 1, 1] };
    const strict = mk({ batchSize: 3, workers: 1 });
    await expect((async () => {
      for await (const _ of strict.batches(split, [0, 1, 2], spec, () => 0)) void _;
    })()).rejects.toThrow(/broken\.jpg[\s\S]*--skip-bad-images/);
    const lenient = mk({ batchSize: 3, workers: 0, skipBad: true });
    const got: number[][] = [];
    for await (const bt of lenient.batches(split, [0, 1, 2], spec, () => 0)) got.push(Array.from(bt.labels));
    expect(got).toEqual([[0, 2]]);
    expect(lenient.badImages.map((b) => path.basename(b.file))).toEqual(['broken.jpg']);
  });
});

describe('evaluate', () => {
  it('matches top-1, top-5, per-class accuracy and confusion computed by hand-written loops', async () => {
    const numClasses = 6;
    // logits = mean pixel * w + b with fixed weights -> every image gets a known score vector
    const input = tf.input({ shape: [4, 4, 1] });
    const pooled = tf.layers.globalAveragePooling2d({}).apply(input) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: numClasses, name: 'fc' }).apply(pooled) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    const w = [3, -1, 0.5, 2, -2, 1];
    const bias = [0, 1, 0.2, -0.5, 1.5, 0.3];
    model.getLayer('fc').setWeights([tf.tensor2d(w, [1, numClasses]), tf.tensor1d(bias)]);
    const n = 26;
    const split: Split = {
      size: n,
      source: (i) => ({ data: new Uint8Array(16).fill(i * 9), width: 4, height: 4, channels: 1 }),
      label: (i) => (i * 5) % numClasses,
      describe: (i) => `img${i}`,
    };
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    const r = await evaluate(model, split, mk({ batchSize: 7, workers: 0 }), evalSpec, { classNames: names, progress: false });

    // reference: plain loops
    let top1 = 0;
    let top5 = 0;
    const conf = names.map(() => new Array(numClasses).fill(0));
    for (let i = 0; i < n; i++) {
      const m = (i * 9) / 255;
      const logits = w.map((wi, c) => m * wi + bias[c]!);
      const ranked = logits.map((v, c) => [v, c] as const).sort((p, q) => q[0] - p[0]).map((p) => p[1]);
      const y = split.label(i);
      conf[y]![ranked[0]!]++;
      if (ranked[0] === y) top1++;
      if (ranked.slice(0, 5).includes(y)) top5++;
    }
    expect(r.images).toBe(n);
    expect(r.confusion).toEqual(conf);
    expect(r.top1).toBeCloseTo((100 * top1) / n, 10);
    expect(r.top5).toBeCloseTo((100 * top5) / n, 10);
    expect(r.perClass.map((c) => c.total)).toEqual(conf.map((row) => row.reduce((a: number, b: number) => a + b, 0)));
    expect(r.perClass.map((c) => c.correct)).toEqual(conf.map((row, i) => row[i]));
    const before = tf.memory().numTensors;
    await evaluate(model, split, mk({ batchSize: 7, workers: 0 }), evalSpec, { classNames: names, progress: false });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects a model whose output count differs from the classes', async () => {
    const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1] }), tf.layers.dense({ units: 2 })] });
    await expect(evaluate(model, rawSplit(3), mk({ batchSize: 2, workers: 0 }), evalSpec, { classNames: ['a', 'b', 'c'], progress: false })).rejects.toThrow(/2 outputs but the dataset has 3 classes/);
  });
});
