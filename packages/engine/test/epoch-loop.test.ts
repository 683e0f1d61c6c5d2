/**
 * The shared epoch loop: resume is bit-identical to an uninterrupted run, a NaN weight stops the
 * run naming the tensor and epoch with the last good checkpoint untouched, a resume with changed
 * options is refused (old -> new) unless accepted, the log is truncated to the checkpoint.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint, modelWeights, setModelWeights } from '../src/checkpoint.js';
import { NonFiniteError, PreemptedError, resetPreemption, runEpochs, type EpochLoopOptions } from '../src/epoch-loop.js';
import { readJsonl } from '../src/metrics-log.js';
import { createWarmupCosineSchedule } from '../src/schedule.js';
import { sgdStep, trainableParams } from '../src/train-step.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'engine-loop-'));
const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WritableStream;

function tinyModel(): tf.LayersModel {
  const input = tf.input({ shape: [4] });
  const h = tf.layers.dense({ name: 'fc1', units: 3, kernelInitializer: tf.initializers.constant({ value: 0.1 }) }).apply(input) as tf.SymbolicTensor;
  const bn = tf.layers.batchNormalization({ name: 'bn' }).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'fc2', units: 1, kernelInitializer: tf.initializers.constant({ value: -0.2 }) }).apply(bn) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/** 12 fixed samples, batches of 4 in an order drawn from the epoch's RNG. */
const X = Array.from({ length: 12 }, (_, i) => [i / 12, Math.sin(i), (i % 3) - 1, 0.5]);
const T = X.map((x) => x[0]! * 2 - x[2]!);

interface Run {
  model: tf.LayersModel;
  opts: EpochLoopOptions<number[]>;
}

function setup(dir: string, extra: Partial<EpochLoopOptions<number[]>> & { lr?: number } = {}): Run {
  const model = tinyModel();
  const lr = extra.lr ?? 0.05;
  const opts: EpochLoopOptions<number[]> = {
    name: 'toy',
    dir,
    params: trainableParams(model),
    sgd: { momentum: 0.9 },
    schedule: createWarmupCosineSchedule({ baseLr: lr, totalSteps: 9, warmupSteps: 2 }),
    epochs: 3,
    stepsPerEpoch: 3,
    seedPath: [7],
    batches: async function* (_epoch, rng) {
      const order = rng.permutation(12);
      for (let b = 0; b < 3; b++) yield order.slice(b * 4, b * 4 + 4);
    },
    step: (idx, stepLr, opt) => {
      const x = tf.tensor2d(idx.map((i) => X[i]!));
      const t = tf.tensor2d(idx.map((i) => [T[i]!]));
      const loss = sgdStep(opt, trainableParams(model), stepLr, () => tf.losses.meanSquaredError(t, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar);
      tf.dispose([x, t]);
      return { loss, n: idx.length, metrics: { half: loss / 2 } };
    },
    evaluate: async () => ({ loss: 0.5, metrics: { score: 1 } }),
    weights: () => modelWeights(model),
    loadWeights: (w, source) => setModelWeights(model, w, { source }),
    final: true,
    runOptions: { lr, epochs: 3 },
    resume: false,
    progressStream: quiet,
    log: () => undefined,
    ...extra,
  };
  return { model, opts };
}

describe('runEpochs', () => {
  it('a run stopped after epoch 1 and resumed ends bit-identical to an uninterrupted run', async () => {
    const a = setup(tmp());
    const full = await runEpochs(a.opts);
    expect(full.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(full.history[0]!.train.half).toBeCloseTo(full.history[0]!.trainLoss / 2, 12);

    const dir = tmp();
    const b1 = setup(dir);
    // stop after the first epoch, as a killed run would be
    await expect(runEpochs({ ...b1.opts, afterEpoch: () => { throw new Error('killed'); } })).rejects.toThrow('killed');
    fs.appendFileSync(path.join(dir, 'metrics.jsonl'), JSON.stringify({ type: 'step', epoch: 2, step: 4 }) + '\n'); // a partial epoch's record
    const b2 = setup(dir, { resume: true });
    const resumed = await runEpochs(b2.opts);
    expect(resumed.resumedFrom).toBe(1);
    const wa = loadCheckpoint(full.checkpoint);
    const wb = loadCheckpoint(resumed.checkpoint);
    for (const [name, t] of wa.weights) expect(Array.from(wb.weights.get(name)!.data as Float32Array), name).toEqual(Array.from(t.data as Float32Array));
    expect(resumed.history.map((h) => h.trainLoss)).toEqual(full.history.map((h) => h.trainLoss));
    const epochs = readJsonl<{ type: string; epoch: number }>(path.join(dir, 'metrics.jsonl')).filter((r) => r.type !== 'resume').map((r) => `${r.type}${r.epoch}`);
    expect(epochs).toEqual(['epoch1', 'epoch2', 'epoch3']);
    // a finished stage is reused, not retrained
    const again = await runEpochs(setup(dir, { resume: true }).opts);
    expect(again.reused).toBe(true);
  });

  it('a NaN BN statistic stops the run naming the tensor and epoch; the last good checkpoint is untouched', async () => {
    const dir = tmp();
    const r = setup(dir);
    let epochs = 0;
    const opts: EpochLoopOptions<number[]> = {
      ...r.opts,
      afterEpoch: () => void epochs++,
      step: (idx, lr, opt) => {
        const out = r.opts.step(idx, lr, opt);
        if (epochs === 1) {
          const bn = r.model.getLayer('bn').getWeights();
          r.model.getLayer('bn').setWeights([bn[0]!, bn[1]!, bn[2]!, tf.fill([3], NaN)]); // moving variance
        }
        return out;
      },
    };
    const last = path.join(dir, 'last.safetensors');
    let before: Buffer | undefined;
    const failing = runEpochs({ ...opts, afterEpoch: () => { epochs++; before = fs.readFileSync(last); } });
    await expect(failing).rejects.toThrow(NonFiniteError);
    await expect(failing).rejects.toThrow(/epoch 2: weight 'bn\/moving_variance' holds 3 non-finite value\(s\).*last\.safetensors \(the last good checkpoint, epoch 1\) was left untouched/);
    expect(fs.readFileSync(last).equals(before!)).toBe(true);
    expect(loadCheckpoint(last).state.epoch).toBe(1);
    expect(fs.existsSync(path.join(dir, 'final.safetensors'))).toBe(false);
    const logged = readJsonl<{ type: string; epoch: number }>(path.join(dir, 'metrics.jsonl'));
    expect(logged.at(-1)).toMatchObject({ type: 'error', epoch: 2 });
  });

  it('a non-finite validation loss stops the run', async () => {
    const r = setup(tmp(), { evaluate: async () => ({ loss: NaN, metrics: {} }) });
    await expect(runEpochs(r.opts)).rejects.toThrow(/epoch 1: validation loss is NaN/);
  });

  it('resume with a changed --lr is refused listing old -> new; --accept-changed-options continues and logs it', async () => {
    const dir = tmp();
    await expect(runEpochs({ ...setup(dir).opts, afterEpoch: () => { throw new Error('killed'); } })).rejects.toThrow('killed');
    const changed = setup(dir, { lr: 30, resume: true });
    await expect(runEpochs(changed.opts)).rejects.toThrow(/last\.safetensors was written with different options: lr 0\.05 -> 30\. .*--accept-changed-options/);
    expect(loadCheckpoint(path.join(dir, 'last.safetensors')).state.epoch).toBe(1);
    const accepted = setup(dir, { lr: 0.04, resume: true, acceptChangedOptions: true });
    const res = await runEpochs(accepted.opts);
    expect(res.changedOptions).toEqual([{ option: 'lr', old: 0.05, new: 0.04 }]);
    const rec = readJsonl<{ type: string; changes?: unknown }>(path.join(dir, 'metrics.jsonl')).find((l) => l.type === 'changed-options');
    expect(rec?.changes).toEqual([{ option: 'lr', old: 0.05, new: 0.04 }]);
    const stored = loadCheckpoint(res.checkpoint).state.extra!.loop as { changedOptions: unknown; runOptions: unknown };
    expect(stored.changedOptions).toEqual([{ option: 'lr', old: 0.05, new: 0.04 }]);
    expect(stored.runOptions).toEqual({ lr: 0.04, epochs: 3 });
  });

  it('keeps best.safetensors by the chosen metric and disposes the optimizer state', async () => {
    const dir = tmp();
    const scores = [0.2, 0.5, 0.3];
    const r = setup(dir, { final: false, best: { metric: 'score', mode: 'max' }, evaluate: async (e) => ({ metrics: { score: scores[e - 1]! } }) });
    const before = tf.memory().numTensors;
    const res = await runEpochs(r.opts);
    expect(tf.memory().numTensors).toBe(before);
    expect(loadCheckpoint(path.join(dir, 'best.safetensors')).state.epoch).toBe(2);
    expect(res.checkpoint).toBe(path.join(dir, 'last.safetensors'));
    expect(res.state.metrics).toEqual({ score: 0.3 });
  });
});

describe('changedOptions', () => {
  it('compares nested options per field, treating key order as irrelevant', async () => {
    const { changedOptions, describeChanges } = await import('../src/epoch-loop.js');
    const c = changedOptions({ optim: { lr: 0.1, epochs: 2 }, spec: { arch: 'a', width: 1 }, seed: 0 }, { spec: { width: 1, arch: 'a' }, optim: { epochs: 3, lr: 30 }, seed: 0, extra: [1] });
    expect(describeChanges(c)).toBe('extra (unset) -> [1], optim.epochs 2 -> 3, optim.lr 0.1 -> 30');
  });
});

describe('assertFiniteWeights (checkpoint writes outside the loop)', () => {
  it('names the first non-finite tensor and passes finite weights', async () => {
    const { assertFiniteWeights } = await import('../src/epoch-loop.js');
    const ok = { a: { shape: [2], data: Float32Array.from([1, 2]) } };
    expect(() => assertFiniteWeights(ok, 'fused.safetensors')).not.toThrow();
    const bad = { ...ok, 'bn/moving_variance': { shape: [3], data: Float32Array.from([1, Infinity, NaN]) } };
    expect(() => assertFiniteWeights(bad, 'fused.safetensors')).toThrow("fused.safetensors: weight 'bn/moving_variance' holds 2 non-finite value(s) (e.g. Infinity); not written");
  });
});

describe('runEpochs on SIGUSR1 / SIGTERM (Slurm preemption)', () => {
  const cases = [
    { signal: 'SIGUSR1', mid: false },
    { signal: 'SIGTERM', mid: false },
    { signal: 'SIGUSR1', mid: true },
  ] as const;
  for (const { signal, mid } of cases) {
    it(`${signal} mid-epoch stops after the step with PreemptedError (${mid ? 'checkpoint at the step' : 'end-of-epoch checkpoint kept'}); --resume ends bit-identical to an uninterrupted run`, async () => {
      const full = await runEpochs(setup(tmp()).opts);
      const dir = tmp();
      const r = setup(dir, { midEpochCheckpoint: mid });
      let steps = 0;
      const stopped = runEpochs({
        ...r.opts,
        step: (idx, lr, opt) => {
          if (++steps === 5) process.kill(process.pid, signal); // epoch 2, second step
          return r.opts.step(idx, lr, opt);
        },
      });
      await expect(stopped).rejects.toThrow(PreemptedError);
      const err = (await stopped.catch((e: PreemptedError) => e)) as PreemptedError;
      expect(steps).toBeLessThan(6); // it did not finish epoch 2
      const ck = loadCheckpoint(path.join(dir, 'last.safetensors')).state;
      expect(ck.epoch).toBe(1);
      if (mid) {
        expect(err.message).toMatch(new RegExp(`stopped by ${signal} during epoch 2; checkpoint written at batch ${steps - 3} of epoch 2: resume continues from .*last\\.safetensors`));
        expect(ck.step).toBe(steps); // the steps of the partial epoch are in the checkpoint
      } else {
        expect(err.message).toMatch(new RegExp(`stopped by ${signal} during epoch 2; resume continues from .*last\\.safetensors \\(epoch 1\\)`));
        expect(ck.step).toBe(3);
      }
      expect(process.listenerCount(signal)).toBe(0); // handlers removed
      // the next stage in the same process stops at once, until reset
      await expect(runEpochs(setup(tmp()).opts)).rejects.toThrow(PreemptedError);
      resetPreemption();
      let resumedSteps = 0;
      const b = setup(dir, { resume: true });
      const resumed = await runEpochs({ ...b.opts, step: (idx, lr, opt) => (resumedSteps++, b.opts.step(idx, lr, opt)) });
      expect(resumed.resumedFrom).toBe(1);
      expect(resumedSteps).toBe(9 - ck.step); // a mid-epoch checkpoint's trained batches are not trained again
      const wa = loadCheckpoint(full.checkpoint);
      const wb = loadCheckpoint(resumed.checkpoint);
      for (const [name, t] of wa.weights) expect(Array.from(wb.weights.get(name)!.data as Float32Array), name).toEqual(Array.from(t.data as Float32Array));
      expect(resumed.history.map((h) => [h.trainLoss, h.train.half, h.step, h.lr])).toEqual(full.history.map((h) => [h.trainLoss, h.train.half, h.step, h.lr]));
    });
  }
});
