import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { refocus } from '@refconv/core';
import { modelWeights, saveCheckpoint, Rng } from '@refconv/engine';
import {
  aggregateMarkdown, aggregateRuns, pairedDifferences, checkpointWeightRedundancy, experimentModelArgs, formatMeanStd, meanStd, modelRedundancy, parseModelSets, runMetrics,
  weightRedundancy, type ImageBatch,
} from '../src/index.js';

describe('aggregateRuns (mean ± sample std over runs)', () => {
  it('matches values worked out by hand, NaN / missing values left out', () => {
    const agg = aggregateRuns([
      { a: { x: 1, y: 10 }, b: { x: 2 } },
      { a: { x: 3, y: NaN }, b: { x: 4, z: 5 } },
      { a: { x: 5, '|c|': 1 }, b: { x: 9 } },
    ]);
    expect(agg.runs).toBe(3);
    expect(agg.models).toEqual(['a', 'b']);
    expect(agg.metrics).toEqual(['x', 'y', 'z', '|c|']);
    // a.x: 1, 3, 5 -> mean 3, deviations -2, 0, 2 -> sqrt(8 / 2) = 2
    expect(agg.summary.a!.x).toEqual({ values: [1, 3, 5], n: 3, mean: 3, std: 2 });
    // b.x: 2, 4, 9 -> mean 5, deviations -3, -1, 4 -> sqrt(26 / 2) = sqrt(13)
    expect(agg.summary.b!.x!.mean).toBe(5);
    expect(agg.summary.b!.x!.std).toBeCloseTo(3.605551275, 9);
    // a.y: one finite value -> mean 10, no std
    expect(agg.summary.a!.y!.n).toBe(1);
    expect(agg.summary.a!.y!.mean).toBe(10);
    expect(agg.summary.a!.y!.std).toBeNaN();
    expect(agg.summary.a!.z).toBeUndefined();
    expect(formatMeanStd(agg.summary.a!.x, 3)).toBe('3.000 ± 2.000');
    expect(formatMeanStd(agg.summary.a!.y, 1)).toBe('10.0');
    expect(formatMeanStd(agg.summary.a!.z)).toBe('n/a');
    const md = aggregateMarkdown(agg, ['s0', 's1', 's2']);
    expect(md).toContain('| metric | a | b |');
    expect(md).toContain('| x | 3.0000 ± 2.0000 | 5.0000 ± 3.6056 |');
    expect(md).toContain('| z | n/a | 5.0000 |');
    expect(md).toContain('| \\|c\\| | 1.0000 | n/a |'); // a '|' in a metric name is escaped
    expect(meanStd([])).toEqual({ n: 0, mean: NaN, std: NaN });
    expect(meanStd([2, 2]).std).toBe(0);
  });

  it('paired differences to a reference model, run by run, against hand-computed values', () => {
    const runs = [
      { control: { x: 1, y: 4 }, refconv: { x: 2, y: 1 }, zero: { x: 1 } },
      { control: { x: 2, y: 4 }, refconv: { x: 5, y: 3 }, zero: { x: 0 } },
    ];
    const d = aggregateRuns(pairedDifferences(runs, 'control'));
    expect(d.models).toEqual(['refconv - control', 'zero - control']);
    // refconv - control: x 1, 3 -> 2 ± sqrt 2; y -3, -1 -> -2 ± sqrt 2
    expect(d.summary['refconv - control']!.x).toMatchObject({ values: [1, 3], mean: 2 });
    expect(d.summary['refconv - control']!.x!.std).toBeCloseTo(Math.SQRT2, 12);
    expect(d.summary['refconv - control']!.y!.mean).toBe(-2);
    // zero - control: x 0, -2 -> -1 ± sqrt 2; no y
    expect(d.summary['zero - control']!.x!.mean).toBe(-1);
    expect(d.summary['zero - control']!.y).toBeUndefined();
    // a metric no model has is no table row
    expect(aggregateMarkdown(aggregateRuns([{ a: { x: 1, y: NaN } }]), ['r'])).not.toContain('| y |');
    expect(() => pairedDifferences(runs, 'nope')).toThrow(/reference model 'nope' \(models: control, refconv, zero\)/);
  });

  it('runMetrics reads every analysis of a results.json', () => {
    const grid = [0.5, 1, 0.5, 1, 1, 1, 0.1, 1, 0.3];
    const m = runMetrics({
      skeleton: [{ name: 'r', kernel: [{ k: 3, skeletonRatio: 1.5, grid }], delta: [{ k: 3, skeletonRatio: 2 }] }],
      weights: { models: [{ name: 'r', mean: 0.25 }] },
      redundancy: { models: [{ name: 'r', mean: { kl: 2, cos: 0.4, weightCos: 0.1 } }] },
      robustness: { models: [{ name: 'r', clean: 90, fgsm: [{ eps: 0.1, top1: 50 }], pgd: [{ eps: 0.1, top1: 40 }], pgdSteps: 10 }] },
      landscape: { surfaces: [{ name: 'r', center: 0.3, sharpness: 0.7 }], interpolations: [{ from: 'b', to: 'r', points: [{ alpha: 0, loss: 1 }, { alpha: 0.5, loss: 2 }, { alpha: 1, loss: 0.5 }] }] },
    });
    expect(m).toEqual({ r: {
      'skeleton ratio k3': 1.5, 'centre k3': 1, 'corner k3': (0.5 + 0.5 + 0.1 + 0.3) / 4, 'delta ratio k3': 2,
      'weight |cos| (checkpoint)': 0.25, 'feature KL': 2, 'feature |cos|': 0.4, 'weight |cos|': 0.1,
      'clean top-1': 90, 'FGSM top-1 @0.1': 50, 'PGD-10 top-1 @0.1': 40,
      'loss at the model': 0.3, sharpness: 0.7, 'barrier from b': 1,
    } });
  });
});

describe('parseModelSets', () => {
  it('one run per comma-separated checkpoint, a single path shared by every run', () => {
    expect(parseModelSets(['base=b.st', 'control=c0.st,c1.st', 'refconv=r0.st,r1.st'])).toEqual([
      [{ name: 'base', file: 'b.st' }, { name: 'control', file: 'c0.st' }, { name: 'refconv', file: 'r0.st' }],
      [{ name: 'base', file: 'b.st' }, { name: 'control', file: 'c1.st' }, { name: 'refconv', file: 'r1.st' }],
    ]);
    expect(parseModelSets(['a=x.st', 'b=y.st'])).toEqual([[{ name: 'a', file: 'x.st' }, { name: 'b', file: 'y.st' }]]);
  });
  it('refuses different numbers of checkpoints and empty paths, naming the models', () => {
    expect(() => parseModelSets(['control=c0,c1', 'refconv=r0,r1,r2'])).toThrow(/control: 2, refconv: 3/);
    expect(() => parseModelSets(['control=c0,,c2'])).toThrow(/'control' has an empty path/);
  });
});

function tinyModel(): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 2] });
  let h = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'c1', kernelInitializer: tf.initializers.randomNormal({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization({ name: 'bn1' }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', name: 'dw', depthwiseInitializer: tf.initializers.randomNormal({ seed: 2 }) }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.conv2d({ filters: 3, kernelSize: 1, name: 'pw', kernelInitializer: tf.initializers.randomNormal({ seed: 3 }) }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 2, name: 'fc' }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

describe('checkpointWeightRedundancy (weights only)', () => {
  it('a hand-computed 1x1 kernel: output kernels (1, 0) and (1, 1) -> |cos| = 1 / sqrt 2; layers in natural name order', () => {
    const k = (layer: string, kernel: number[]) => ({ layer, kind: 'conv' as const, shape: [1, 1, 2, 2] as [number, number, number, number], kernel: Float32Array.from(kernel) });
    // layer10: output kernels (1, 0), (0, 1) -> |cos| 0
    const r = checkpointWeightRedundancy([k('layer10', [1, 0, 0, 1]), k('layer2', [1, 1, 0, 1])]);
    expect(r.layers.map((l) => [l.layer, l.depth])).toEqual([['layer2', 1], ['layer10', 2]]);
    expect(r.layers[0]!.weightCos).toBeCloseTo(Math.SQRT1_2, 6);
    expect(r.layers[1]!.weightCos).toBeCloseTo(0, 6);
    expect(r.mean).toBeCloseTo(Math.SQRT1_2 / 2, 6);
  });

  it('equals the weight |cos| measured on the loaded model (plain and refocused, depthwise included)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'analysis-wr-'));
    const plain = tinyModel();
    const ref = refocus(plain, { mapK: 3, seed: 4 });
    const rng = new Rng(5);
    const images: ImageBatch = { x: Float32Array.from({ length: 2 * 8 * 8 * 2 }, () => rng.normal()), labels: new Int32Array(2), n: 2, size: 8, channels: 2, mean: [0, 0], std: [1, 1], indices: [] };
    for (const [name, m] of [['plain', plain], ['ref', ref]] as const) {
      const file = path.join(dir, `${name}.safetensors`);
      saveCheckpoint(file, { weights: modelWeights(m), state: { epoch: 0, step: 0 } });
      const got = checkpointWeightRedundancy(file);
      const want = modelRedundancy(m, images, { label: false });
      // layer-name order (here also the network's)
      const byName = got.layers;
      expect(byName.map((l) => [l.layer, l.depthwise, l.channels])).toEqual([['c1', false, 4], ['dw', true, 4], ['pw', false, 3]]);
      expect(byName.map((l) => l.kind)).toEqual(name === 'ref' ? ['refconv', 'refconv', 'conv'] : ['conv', 'depthwise', 'conv']);
      byName.forEach((l, i) => expect(l.weightCos).toBeCloseTo(want.layers[i]!.weightCos, 5));
      expect(got.mean).toBeCloseTo(want.mean.weightCos, 5);
    }
    // the depthwise RefConv layer read as a regular conv would be a single output kernel: no value
    expect(weightRedundancy(new Float32Array(36), [3, 3, 4, 1], false)).toBeNaN();
    plain.dispose();
    ref.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('experimentModelArgs (--experiment DIR)', () => {
  it('finds every seed\'s checkpoints of classify:experiment folders, a shared --from baseline once, zero init named', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'analysis-exp-'));
    const touch = (...p: string[]) => { fs.mkdirSync(path.join(dir, ...p.slice(0, -1)), { recursive: true }); fs.writeFileSync(path.join(dir, ...p), ''); };
    touch('base', 'final.safetensors');
    const base = path.join(dir, 'base', 'final.safetensors');
    for (const s of [0, 2]) {
      touch('conv', `seed-${s}`, 'control', 'final.safetensors');
      touch('conv', `seed-${s}`, 'refocus', 'final.safetensors');
      touch('zero', `seed-${s}`, 'refocus', 'final.safetensors');
    }
    touch('conv', 'seed-2', 'refocus', 'last.safetensors');
    fs.writeFileSync(path.join(dir, 'conv', 'results.json'), JSON.stringify({ config: { baseline: base, refocus: { init: 'default' } } }));
    fs.writeFileSync(path.join(dir, 'zero', 'results.json'), JSON.stringify({ config: { baseline: base, refocus: { init: 'zero' } } }));
    const c = (s: number, st: string) => path.join(dir, 'conv', `seed-${s}`, st, 'final.safetensors');
    expect(experimentModelArgs([path.join(dir, 'conv'), path.join(dir, 'zero')])).toEqual([
      `baseline=${base}`,
      `control=${c(0, 'control')},${c(2, 'control')}`,
      `refconv=${c(0, 'refocus')},${c(2, 'refocus')}`,
      `refconv-zero=${path.join(dir, 'zero', 'seed-0', 'refocus', 'final.safetensors')},${path.join(dir, 'zero', 'seed-2', 'refocus', 'final.safetensors')}`,
    ]);
    // a classify:train folder without results.json: the baseline is each seed's pretrain stage
    touch('train', 'seed-0', 'pretrain', 'final.safetensors');
    expect(experimentModelArgs([path.join(dir, 'train')])).toEqual([`baseline=${path.join(dir, 'train', 'seed-0', 'pretrain', 'final.safetensors')}`]);
    // errors name the folder
    expect(() => experimentModelArgs([path.join(dir, 'conv'), path.join(dir, 'train')])).toThrow(/train: seeds 0 differ from .*conv's \(0, 2\)/);
    expect(() => experimentModelArgs([path.join(dir, 'base')])).toThrow(/base: no seed-<s> folder/);
    expect(() => experimentModelArgs([path.join(dir, 'nope')])).toThrow(/nope: no such folder/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
