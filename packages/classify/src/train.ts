/**
 * One training stage (pretrain, refocus or control): SGD + warmup-cosine over `epochs`,
 * evaluation after every epoch, an atomic checkpoint after every epoch, exact resume.
 *
 * Stage folder layout: `last.safetensors` (weights + optimizer + state, rewritten each epoch),
 * `final.safetensors` (weights + state, no optimizer; written when the stage completes),
 * `metrics.jsonl` (one record per epoch, plus step records every `logEvery` steps).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import {
  createProgress, createWarmupCosineSchedule, crossEntropy, deriveSeed, JsonlLogger, loadCheckpoint, modelWeights,
  noDecayOnBiasAndNorm, Rng, saveCheckpoint, setModelWeights, SGD, sgdStep, timeWaits, topkCorrect, trainableParams, type RngState, type TrainingState, type WaitMeter,
} from '@refconv/engine';
import type { Split } from './data/dataset.js';
import type { BatchLoader } from './data/loader.js';
import { outputSize, type TransformSpec } from './data/transforms.js';
import { evaluate } from './evaluate.js';
import type { ModelSpec } from './model.js';

/** Optimisation hyper-parameters of a stage (torchvision reference-script names in comments). */
export interface OptimConfig {
  epochs: number;
  batchSize: number;
  /** Peak learning rate (`--lr`). */
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  /** Apply weight decay to biases and BN parameters too (default false: `--norm-weight-decay 0`). */
  decayBnBias: boolean;
  /** Linear warmup length in epochs, applied per iteration (`--lr-warmup-epochs`). */
  warmupEpochs: number;
  /** Warmup start as a fraction of lr (`--lr-warmup-decay`). */
  warmupStartFactor: number;
  /** Cosine floor (`--lr-min`). */
  minLr: number;
  labelSmoothing: number;
}

/** Metrics of one epoch. */
export interface EpochRecord {
  epoch: number;
  step: number;
  lr: number;
  trainLoss: number;
  trainTop1: number;
  valLoss: number;
  valTop1: number;
  valTop5: number;
  seconds: number;
  imagesPerSec: number;
  /**
   * Seconds of the epoch's training loop spent waiting for the next batch (decode + augmentation
   * that prefetching did not hide); near 0 when the data pipeline is off the critical path.
   */
  dataWaitSeconds?: number;
}

/** Inputs of {@link trainStage}. */
export interface StageOptions {
  /** `pretrain`, `refocus` or `control` (also salts the data-order RNG). */
  name: string;
  dir: string;
  model: tf.LayersModel;
  spec: ModelSpec;
  classNames: string[];
  optim: OptimConfig;
  seed: number;
  train: Split;
  val: Split;
  loader: BatchLoader;
  trainTransform: TransformSpec;
  evalTransform: TransformSpec;
  /** Continue from `dir/last.safetensors` (or reuse `dir/final.safetensors`). */
  resume: boolean;
  /** Extra JSON to keep in the checkpoints (e.g. the run config). */
  extra?: Record<string, unknown>;
  /** Write a step record to metrics.jsonl every this many steps (default 50). */
  logEvery?: number;
}

/** What a finished stage leaves behind. */
export interface StageResult {
  history: EpochRecord[];
  finalCheckpoint: string;
  /** True when the stage was already complete and only loaded. */
  reused: boolean;
}

const stageSalt = (name: string): number => [...name].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0, 7);

/** Trains `model` in place for one stage (see module doc). */
export async function trainStage(o: StageOptions): Promise<StageResult> {
  fs.mkdirSync(o.dir, { recursive: true });
  const lastFile = path.join(o.dir, 'last.safetensors');
  const finalFile = path.join(o.dir, 'final.safetensors');
  const params = trainableParams(o.model);
  const opt = new SGD(params, {
    momentum: o.optim.momentum,
    nesterov: o.optim.nesterov,
    weightDecay: o.optim.weightDecay,
    decayFilter: o.optim.decayBnBias ? undefined : noDecayOnBiasAndNorm,
  });
  try {
    if (o.resume && fs.existsSync(finalFile)) {
      const ck = loadCheckpoint(finalFile);
      setModelWeights(o.model, ck.weights, { source: finalFile });
      process.stderr.write(`[${o.name}] already complete: reusing ${finalFile}\n`);
      return { history: (ck.state.extra?.history as EpochRecord[]) ?? [], finalCheckpoint: finalFile, reused: true };
    }
    const stepsPerEpoch = Math.ceil(o.train.size / o.optim.batchSize);
    const totalSteps = stepsPerEpoch * o.optim.epochs;
    const schedule = createWarmupCosineSchedule({
      baseLr: o.optim.lr,
      totalSteps,
      warmupSteps: Math.min(totalSteps, Math.round(o.optim.warmupEpochs * stepsPerEpoch)),
      warmupStartFactor: o.optim.warmupStartFactor,
      minLr: o.optim.minLr,
    });
    const salt = stageSalt(o.name);
    let epoch = 0;
    let step = 0;
    let history: EpochRecord[] = [];
    let resumedRng: RngState | undefined;
    const log = new JsonlLogger(path.join(o.dir, 'metrics.jsonl'), { truncate: !(o.resume && fs.existsSync(lastFile)) });
    if (o.resume && fs.existsSync(lastFile)) {
      const ck = loadCheckpoint(lastFile);
      setModelWeights(o.model, ck.weights, { source: lastFile });
      if (ck.optimizer) opt.setState(ck.optimizer);
      epoch = ck.state.epoch;
      step = ck.state.step;
      history = (ck.state.extra?.history as EpochRecord[]) ?? [];
      resumedRng = ck.state.rng;
      process.stderr.write(`[${o.name}] resuming from ${lastFile}: epoch ${epoch}/${o.optim.epochs}, step ${step}\n`);
      log.log({ type: 'resume', stage: o.name, epoch, step });
    }
    const size = outputSize(o.trainTransform);
    const ch = o.trainTransform.channels;
    const logEvery = o.logEvery ?? 50;
    for (; epoch < o.optim.epochs; epoch++) {
      // The data order of each epoch comes from a generator whose state is saved in the checkpoint.
      const epochRng = resumedRng ? Rng.fromState(resumedRng) : new Rng(deriveSeed(o.seed, salt, epoch));
      resumedRng = undefined;
      const order = epochRng.permutation(o.train.size);
      const progress = createProgress({ label: `[${o.name}] epoch ${epoch + 1}/${o.optim.epochs}`, total: stepsPerEpoch });
      const t0 = performance.now();
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      const dataWait: WaitMeter = { ms: 0 };
      for await (const batch of timeWaits(o.loader.batches(o.train, order, o.trainTransform, (pos) => deriveSeed(o.seed, salt, epoch, pos)), dataWait)) {
        if (batch.n === 0) continue;
        const lr = schedule.at(step);
        const x = tf.tensor4d(batch.x, [batch.n, size, size, ch]);
        const y = tf.tensor1d(batch.labels, 'int32');
        let hits = 0;
        const loss = sgdStep(opt, params, lr, () => {
          const logits = o.model.apply(x, { training: true }) as tf.Tensor2D;
          hits = topkCorrect(logits, batch.labels, 1);
          return crossEntropy(logits, y, o.optim.labelSmoothing);
        });
        x.dispose();
        y.dispose();
        step++;
        lossSum += loss * batch.n;
        correct += hits;
        seen += batch.n;
        progress.tick(1, batch.n, { loss: lossSum / seen, acc: (100 * correct) / seen, lr });
        if (step % logEvery === 0) log.log({ type: 'step', stage: o.name, epoch: epoch + 1, step, lr, loss });
      }
      const trainSeconds = progress.finish();
      const ev = await evaluate(o.model, o.val, o.loader, o.evalTransform, { classNames: o.classNames, label: `[${o.name}] val ${epoch + 1}/${o.optim.epochs}` });
      const record: EpochRecord = {
        epoch: epoch + 1,
        step,
        lr: schedule.at(Math.max(0, step - 1)),
        trainLoss: lossSum / seen,
        trainTop1: (100 * correct) / seen,
        valLoss: ev.loss,
        valTop1: ev.top1,
        valTop5: ev.top5,
        seconds: (performance.now() - t0) / 1000,
        imagesPerSec: seen / trainSeconds,
        dataWaitSeconds: dataWait.ms / 1000,
      };
      history.push(record);
      const state: TrainingState = {
        epoch: epoch + 1,
        step,
        rng: new Rng(deriveSeed(o.seed, salt, epoch + 1)).getState(),
        classNames: o.classNames,
        model: o.spec as unknown as Record<string, unknown>,
        metrics: { valTop1: ev.top1, valTop5: ev.top5, valLoss: ev.loss },
        extra: { stage: o.name, seed: o.seed, optim: o.optim, history, ...o.extra },
      };
      saveCheckpoint(lastFile, { weights: modelWeights(o.model), optimizer: opt.getState(), state });
      log.log({ type: 'epoch', stage: o.name, ...record });
      process.stderr.write(`[${o.name}] epoch ${epoch + 1}: train loss ${record.trainLoss.toFixed(4)} top-1 ${record.trainTop1.toFixed(2)} | val loss ${ev.loss.toFixed(4)} top-1 ${ev.top1.toFixed(2)} top-5 ${ev.top5.toFixed(2)} | ${record.imagesPerSec.toFixed(1)} img/s, waiting for data ${((100 * dataWait.ms) / 1000 / trainSeconds).toFixed(1)}% of train time\n`);
    }
    const last = fs.existsSync(lastFile) ? loadCheckpoint(lastFile).state : undefined;
    saveCheckpoint(finalFile, {
      weights: modelWeights(o.model),
      state: last ?? { epoch, step, classNames: o.classNames, model: o.spec as unknown as Record<string, unknown>, extra: { stage: o.name, history } },
    });
    return { history, finalCheckpoint: finalFile, reused: false };
  } finally {
    opt.dispose();
  }
}
