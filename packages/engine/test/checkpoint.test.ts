import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint, modelWeights, saveCheckpoint, setModelWeights } from '../src/checkpoint.js';
import { Rng } from '../src/rng.js';
import { SGD } from '../src/sgd.js';
import { trainableParams } from '../src/train-step.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'engine-ckpt-'));

function tinyModel(name: string): tf.LayersModel {
  const input = tf.input({ shape: [4, 4, 2] });
  const conv = tf.layers.conv2d({ name: 'conv', filters: 3, kernelSize: 3, padding: 'same' }).apply(input) as tf.SymbolicTensor;
  const bn = tf.layers.batchNormalization({ name: 'bn' }).apply(conv) as tf.SymbolicTensor;
  const pool = tf.layers.globalAveragePooling2d({}).apply(bn) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'fc', units: 2 }).apply(pool) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name });
}

describe('checkpoints', () => {
  it('round-trips weights, optimizer momentum, RNG and state into a fresh model', () => {
    const dir = tmp();
    const a = tinyModel('a');
    const params = trainableParams(a);
    const opt = new SGD(params, { momentum: 0.9 });
    const grads = Object.fromEntries(params.map((p) => [p.name, tf.onesLike(p.variable)]));
    opt.step(grads, 0.1);
    const rng = new Rng(9);
    rng.random();
    const file = path.join(dir, 'last.safetensors');
    saveCheckpoint(file, { weights: modelWeights(a), optimizer: opt.getState(), state: { epoch: 3, step: 30, rng: rng.getState(), classNames: ['x', 'y'], metrics: { top1: 0.5 } } });

    const ck = loadCheckpoint(file);
    expect(ck.state.epoch).toBe(3);
    expect(ck.state.classNames).toEqual(['x', 'y']);
    expect(Rng.fromState(ck.state.rng!).random()).toBe(rng.random());
    expect([...ck.weights.keys()].sort()).toEqual(['bn/beta', 'bn/gamma', 'bn/moving_mean', 'bn/moving_variance', 'conv/bias', 'conv/kernel', 'fc/bias', 'fc/kernel']);
    expect(ck.optimizer!.step).toBe(1);
    expect(Array.from(ck.optimizer!.momentum['fc/kernel']!.data)).toEqual(new Array(6).fill(1));

    const b = tinyModel('b'); // different random init
    setModelWeights(b, ck.weights);
    const x = tf.randomNormal([2, 4, 4, 2]);
    expect(Array.from((b.predict(x) as tf.Tensor).dataSync())).toEqual(Array.from((a.predict(x) as tf.Tensor).dataSync()));
  });

  it('names missing, unexpected and mis-shaped weights', () => {
    const m = tinyModel('m');
    const w = new Map(Object.entries(modelWeights(m)).map(([k, v]) => [k, { dtype: 'F32' as const, shape: [...v.shape], data: v.data }]));
    w.delete('fc/bias');
    w.set('extra/kernel', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
    w.set('conv/bias', { dtype: 'F32', shape: [4], data: new Float32Array(4) });
    expect(() => setModelWeights(m, w, { source: 'x.safetensors' })).toThrow(/x\.safetensors.*'conv\/bias': checkpoint has \[4\], model has \[3\].*missing 'fc\/bias'.*unexpected 'extra\/kernel'/);
  });

  it('reports corrupt and foreign files by name', () => {
    const dir = tmp();
    const bad = path.join(dir, 'bad.safetensors');
    fs.writeFileSync(bad, 'not a checkpoint at all');
    expect(() => loadCheckpoint(bad)).toThrow(/bad\.safetensors/);
    expect(() => loadCheckpoint(path.join(dir, 'missing.safetensors'))).toThrow(/missing\.safetensors does not exist/);
  });

  it('a run killed while saving leaves a complete, consistent checkpoint', async () => {
    const dir = tmp();
    const file = path.join(dir, 'ck.safetensors');
    const helper = fileURLToPathSafe(new URL('./helpers/checkpoint-writer.ts', import.meta.url));
    for (const delayMs of [150, 600]) {
      const child = spawn(process.execPath, ['--conditions=@refconv/source', '--import', 'tsx', helper, file], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
      await new Promise((r) => setTimeout(r, delayMs));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const ck = loadCheckpoint(file);
      const i = ck.state.epoch;
      expect(i).toBeGreaterThanOrEqual(1);
      expect(ck.state.step).toBe(i * 10);
      for (const t of ck.weights.values()) {
        const d = t.data as Float32Array;
        expect(d[0]).toBe(i);
        expect(d[d.length - 1]).toBe(i);
      }
    }
  }, 180_000); // each child process starts tsx + tfjs: slow on a loaded machine
});

function fileURLToPathSafe(u: URL): string {
  return decodeURIComponent(u.pathname);
}
