/**
 * One training stage (pretrain, refocus or control): SGD + warmup-cosine over `epochs`,
 * evaluation after every epoch, on @refconv/engine's shared epoch loop (`runEpochs`: atomic
 * checkpoints, exact resume, changed-options check, finite-weights check).
 *
 * Stage folder layout: `last.safetensors` (weights + optimizer + state, rewritten each epoch),
 * `final.safetensors` (weights + state, no optimizer; written when the stage completes),
 * `metrics.jsonl` (one record per epoch, plus step records every `logEvery` steps).
 */
import * as tf from '@tensorflow/tfjs';
import {
  createWarmupCosineSchedule, crossEntropy, deriveSeed, modelWeights, noDecayOnBiasAndNorm, runEpochs, setModelWeights, sgdStep, topkCorrect,
  trainableParams, warmupStepsOf, type EpochRecord, type OptionChange,
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
  /** Linear warmup length in iterations; replaces `warmupEpochs` when set (`--warmup-steps`). */
  warmupSteps?: number;
  /** Warmup start as a fraction of lr (`--lr-warmup-decay`). */
  warmupStartFactor: number;
  /** Cosine floor (`--lr-min`). */
  minLr: number;
  labelSmoothing: number;
}

/** One epoch of a stage: the engine's shared record (train `top1`; val `loss`, `top1`, `top5`). */
export type { EpochRecord } from '@refconv/engine';

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
  /** Options besides the stage's own that change its result (model, data, RefConv), compared on resume. */
  runOptions?: Record<string, unknown>;
  /** Resume even though options differ (recorded in the log and the report). */
  acceptChangedOptions?: boolean;
}

/** What a finished stage leaves behind. */
export interface StageResult {
  history: EpochRecord[];
  finalCheckpoint: string;
  /** True when the stage was already complete and only loaded. */
  reused: boolean;
  /** Option changes accepted on resume (`--accept-changed-options`). */
  changedOptions: OptionChange[];
}

const stageSalt = (name: string): number => [...name].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0, 7);

/** Trains `model` in place for one stage (see module doc) on the engine's epoch loop. */
export async function trainStage(o: StageOptions): Promise<StageResult> {
  const stepsPerEpoch = Math.ceil(o.train.size / o.optim.batchSize);
  const totalSteps = stepsPerEpoch * o.optim.epochs;
  const schedule = createWarmupCosineSchedule({
    baseLr: o.optim.lr,
    totalSteps,
    warmupSteps: Math.min(totalSteps, warmupStepsOf(o.optim, stepsPerEpoch)),
    warmupStartFactor: o.optim.warmupStartFactor,
    minLr: o.optim.minLr,
  });
  const salt = stageSalt(o.name);
  const params = trainableParams(o.model);
  const size = outputSize(o.trainTransform);
  const ch = o.trainTransform.channels;
  const r = await runEpochs({
    name: o.name,
    dir: o.dir,
    params,
    sgd: { momentum: o.optim.momentum, nesterov: o.optim.nesterov, weightDecay: o.optim.weightDecay, decayFilter: o.optim.decayBnBias ? undefined : noDecayOnBiasAndNorm },
    schedule,
    epochs: o.optim.epochs,
    stepsPerEpoch,
    seedPath: [o.seed, salt],
    // on SIGTERM / SIGUSR1 (Slurm) checkpoint at the step: batches depend only on (epoch, rng, position)
    midEpochCheckpoint: true,
    // the data order of each epoch comes from the loop's per-epoch generator (saved in the checkpoint)
    batches: (epoch, rng) => o.loader.batches(o.train, rng.permutation(o.train.size), o.trainTransform, (pos) => deriveSeed(o.seed, salt, epoch, pos)),
    step: (batch, lr, opt) => {
      if (batch.n === 0) return { loss: 0, n: 0 };
      const x = tf.tensor4d(batch.x, [batch.n, size, size, ch]);
      const y = tf.tensor1d(batch.labels, 'int32');
      let hits = 0;
      try {
        const loss = sgdStep(opt, params, lr, () => {
          const logits = o.model.apply(x, { training: true }) as tf.Tensor2D;
          hits = topkCorrect(logits, batch.labels, 1);
          return crossEntropy(logits, y, o.optim.labelSmoothing);
        });
        return { loss, n: batch.n, metrics: { top1: (100 * hits) / batch.n } };
      } finally {
        x.dispose();
        y.dispose();
      }
    },
    evaluate: async (epoch) => {
      const ev = await evaluate(o.model, o.val, o.loader, o.evalTransform, { classNames: o.classNames, label: `[${o.name}] val ${epoch}/${o.optim.epochs}` });
      return { loss: ev.loss, metrics: { top1: ev.top1, top5: ev.top5 } };
    },
    weights: () => modelWeights(o.model),
    loadWeights: (w, source) => setModelWeights(o.model, w, { source }),
    final: true,
    runOptions: { ...o.runOptions, stage: o.name, seed: o.seed, optim: o.optim, train: o.train.size, val: o.val.size },
    resume: o.resume,
    acceptChangedOptions: o.acceptChangedOptions,
    state: { classNames: o.classNames, model: o.spec as unknown as Record<string, unknown>, extra: { stage: o.name, seed: o.seed, optim: o.optim, ...o.extra } },
    logEvery: o.logEvery ?? 50,
  });
  return { history: r.history, finalCheckpoint: r.checkpoint, reused: r.reused, changedOptions: r.changedOptions };
}
