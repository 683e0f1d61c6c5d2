import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { SGD, noDecayOnBiasAndNorm, type NamedParam } from '../src/sgd.js';

interface Case {
  name: string;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weight_decay: number;
  decay_bias: boolean;
  lrs: number[];
  w0: number[];
  b0: number[];
  grads: Array<{ w: number[]; b: number[] }>;
  trajectory: Array<{ w: number[]; b: number[] }>;
}
// produced by tools/sgd_fixture.py with torch.optim.SGD
const fixture = JSON.parse(fs.readFileSync(new URL('./fixtures/sgd_torch.json', import.meta.url), 'utf8')) as { cases: Case[] };

function makeParams(c: Case): NamedParam[] {
  return [
    { name: 'dense/kernel', variable: tf.variable(tf.tensor(c.w0, [3, 4])) },
    { name: 'dense/bias', variable: tf.variable(tf.tensor(c.b0, [4])) },
  ];
}

function makeOpt(c: Case, params: NamedParam[]): SGD {
  return new SGD(params, {
    momentum: c.momentum,
    dampening: c.dampening,
    nesterov: c.nesterov,
    weightDecay: c.weight_decay,
    decayFilter: c.decay_bias ? undefined : noDecayOnBiasAndNorm,
  });
}

function stepWith(opt: SGD, c: Case, i: number): void {
  const g = { 'dense/kernel': tf.tensor(c.grads[i]!.w, [3, 4]), 'dense/bias': tf.tensor(c.grads[i]!.b, [4]) };
  opt.step(g, c.lrs[i]!);
  Object.values(g).forEach((t) => t.dispose());
}

function expectClose(actual: tf.Tensor, expected: number[]): void {
  const a = actual.dataSync();
  expected.forEach((v, i) => expect(a[i]).toBeCloseTo(v, 5));
}

describe('SGD vs torch.optim.SGD', () => {
  for (const c of fixture.cases) {
    it(`${c.name}: matches every step of the PyTorch trajectory`, () => {
      const params = makeParams(c);
      const opt = makeOpt(c, params);
      const before = tf.memory().numTensors;
      c.lrs.forEach((_, i) => {
        stepWith(opt, c, i);
        expectClose(params[0]!.variable, c.trajectory[i]!.w);
        expectClose(params[1]!.variable, c.trajectory[i]!.b);
        if (i > 0) expect(tf.memory().numTensors).toBe(before + (c.momentum ? 2 : 0)); // only the momentum buffers persist
      });
      opt.dispose();
      params.forEach((p) => p.variable.dispose());
    });
  }

  it('save/restore mid-run continues the same trajectory', () => {
    const c = fixture.cases[0]!;
    const params = makeParams(c);
    const opt = makeOpt(c, params);
    stepWith(opt, c, 0);
    stepWith(opt, c, 1);
    const state = opt.getState();
    const wSaved = params.map((p) => p.variable.dataSync().slice());
    opt.dispose();
    params.forEach((p) => p.variable.dispose());

    const params2 = makeParams(c);
    params2.forEach((p, i) => p.variable.assign(tf.tensor(wSaved[i]!, p.variable.shape)));
    const opt2 = makeOpt(c, params2);
    opt2.setState(state);
    expect(opt2.stepCount).toBe(2);
    for (let i = 2; i < c.lrs.length; i++) stepWith(opt2, c, i);
    expectClose(params2[0]!.variable, c.trajectory.at(-1)!.w);
    expectClose(params2[1]!.variable, c.trajectory.at(-1)!.b);
    opt2.dispose();
  });

  it('reports which params get weight decay and rejects bad input', () => {
    const c = fixture.cases[0]!;
    const params = makeParams(c);
    const opt = makeOpt(c, params);
    expect(opt.decayedParamNames()).toEqual(['dense/kernel']);
    expect(() => opt.step({ 'dense/kernel': tf.zeros([4, 3]) }, 0.1)).toThrow(/dense\/kernel.*\[4,3\].*\[3,4\]/);
    expect(() => new SGD(params, { momentum: 0, nesterov: true })).toThrow(/Nesterov/);
    expect(() => opt.setState({ step: 1, momentum: { nope: { shape: [1], data: new Float32Array(1) } } })).toThrow(/unknown parameter 'nope'/);
  });
});

describe('SGD on the native one-pass update (RefconvSgdUpdate)', () => {
  /** Runs every fixture case with the native update route on or off; returns the trajectories and which TF ops ran. */
  async function trajectories(native: boolean) {
    const { applyKernelPlan, enableFastKernels, initBackend } = await import('@refconv/core');
    const plan = (await initBackend()).kernelPlan!;
    enableFastKernels();
    applyKernelPlan({ ...plan, refconvOps: { sgdUpdate: native, maxPoolGrad: plan.refconvOps?.maxPoolGrad ?? false } });
    const backend = tf.backend() as unknown as { executeMultipleOutputs: (name: string, ...rest: unknown[]) => unknown };
    const orig = backend.executeMultipleOutputs;
    const calls: string[] = [];
    backend.executeMultipleOutputs = function (this: unknown, name: string, ...rest: unknown[]) {
      calls.push(name);
      return orig.call(this, name, ...rest);
    };
    try {
      return {
        calls,
        runs: fixture.cases.map((c) => {
          const params = makeParams(c);
          const opt = makeOpt(c, params);
          const out = c.lrs.map((_, i) => {
            stepWith(opt, c, i);
            return params.map((p) => Array.from(p.variable.dataSync()));
          });
          opt.dispose();
          params.forEach((p) => p.variable.dispose());
          return out;
        }),
      };
    } finally {
      backend.executeMultipleOutputs = orig;
      applyKernelPlan(plan);
    }
  }

  it('follows the PyTorch trajectories and equals the tfjs-op route bit for bit', async () => {
    const ops = await trajectories(false);
    const fused = await trajectories(true);
    expect(ops.calls).not.toContain('RefconvSgdUpdate');
    // every step after the first of every parameter of every case with momentum
    const withMomentum = fixture.cases.filter((c) => c.momentum !== 0);
    expect(fused.calls.filter((n) => n === 'RefconvSgdUpdate')).toHaveLength(withMomentum.reduce((n, c) => n + 2 * (c.lrs.length - 1), 0));
    expect(fused.runs).toEqual(ops.runs);
    fixture.cases.forEach((c, k) => c.trajectory.forEach((t, i) => {
      t.w.forEach((v, j) => expect(fused.runs[k]![i]![0]![j]).toBeCloseTo(v, 5));
      t.b.forEach((v, j) => expect(fused.runs[k]![i]![1]![j]).toBeCloseTo(v, 5));
    }));
  });
});
