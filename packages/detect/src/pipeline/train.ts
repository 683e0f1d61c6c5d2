/**
 * Detector training on @refconv/engine's shared epoch loop (`runEpochs`: exact resume, stored
 * options refused on change, finite checks, atomic `last.safetensors`, `metrics.jsonl`): SGD with
 * momentum and weight decay over a warmup + cosine schedule (per iteration), random horizontal
 * flips drawn from the epoch's RNG, read-ahead decoding. What is detector-specific is the step:
 * the sum of the detector's named losses, each averaged over the epoch as a metric.
 */
import * as tf from '@tensorflow/tfjs';
import { createWarmupCosineSchedule, runEpochs, sgdStep, warmupStepsOf, type EpochLoopResult, type SgdOptions } from '@refconv/engine';
import type { DetectionDataset } from '../data/dataset.js';
import type { Detector } from '../models/detector.js';
import { detectorWeights, setDetectorWeights, type DetectorDescription } from './checkpoint.js';
import { batchTensor, iterateBatches } from './loader.js';

/** Options of {@link trainDetector}. */
export interface TrainDetectorOptions {
  det: Detector;
  /** Description stored in checkpoints (must describe `det.model`). */
  description: DetectorDescription;
  data: DetectionDataset;
  epochs: number;
  batchSize: number;
  lr: number;
  momentum?: number;
  weightDecay?: number;
  /** Linear warmup iterations (torchvision detection reference); default 100 unless `warmupEpochs` is set. */
  warmupSteps?: number;
  /** Linear warmup in epochs (used when `warmupSteps` is not set). */
  warmupEpochs?: number;
  /** Warmup start as a fraction of `lr` (torchvision detection reference: 0.001). */
  warmupStartFactor?: number;
  seed?: number;
  /** Run folder: `last.safetensors` (rewritten atomically after each epoch) and `metrics.jsonl`. */
  dir: string;
  /** Continue from `dir/last.safetensors` if it exists. */
  resume?: boolean;
  /** Resume although options differ from the stored run (the changes are logged). */
  acceptChangedOptions?: boolean;
  /** Options besides the schedule that change the result (data, model), compared on resume. */
  runOptions?: Record<string, unknown>;
  /** Label of the progress bar and log records (e.g. `baseline`, `refconv`). */
  tag?: string;
  /** Stop after this many iterations per epoch (for smoke tests). */
  maxStepsPerEpoch?: number;
  /** Prints a line (default stderr). */
  log?: (line: string) => void;
}

/** Compact names for the progress line (`classification` -> `cls`, `loss_box_reg` -> `box_reg`). */
export function shortLossName(k: string): string {
  return k.replace(/^loss_/, '').replace('classification', 'cls').replace('bbox_regression', 'box');
}

/** Trains `det` in place; every epoch's record is in `history` (loss terms under `train`). */
export async function trainDetector(o: TrainDetectorOptions): Promise<EpochLoopResult> {
  const { det, data } = o;
  const stepsPerEpoch = Math.min(Math.ceil(data.records.length / o.batchSize), o.maxStepsPerEpoch ?? Infinity);
  const totalSteps = stepsPerEpoch * o.epochs;
  const warmupStartFactor = o.warmupStartFactor ?? 0.001;
  const warmupSteps = Math.min(o.warmupSteps === undefined && o.warmupEpochs === undefined ? 100 : warmupStepsOf(o, stepsPerEpoch), totalSteps - 1);
  const schedule = createWarmupCosineSchedule({ baseLr: o.lr, totalSteps, warmupSteps, warmupStartFactor });
  const params = det.trainableWeights().map((w) => ({ name: w.originalName, variable: w.read() as tf.Variable }));
  const sgd: SgdOptions = { momentum: o.momentum ?? 0.9, weightDecay: o.weightDecay ?? 1e-4 };
  const seed = o.seed ?? 0;
  return runEpochs({
    name: o.tag ?? 'train',
    dir: o.dir,
    params,
    sgd,
    schedule,
    epochs: o.epochs,
    stepsPerEpoch,
    seedPath: [seed],
    batches: (_epoch, rng) => {
      const order = rng.permutation(data.records.length).slice(0, stepsPerEpoch * o.batchSize);
      const flips = order.map(() => rng.bernoulli(0.5));
      return iterateBatches(data.records, order, o.batchSize, o.description.resize, flips);
    },
    step: (batch, lr, opt) => {
      const images = batchTensor(batch);
      let terms: Record<string, number> = {};
      try {
        const loss = sgdStep(opt, params, lr, () => {
          const l = det.losses(images, batch.targets, batch.geometry);
          terms = Object.fromEntries(Object.entries(l).map(([k, v]) => [k, v.dataSync()[0]!]));
          return tf.addN(Object.values(l)) as tf.Scalar;
        });
        return { loss, n: batch.records.length, metrics: terms };
      } finally {
        images.dispose();
      }
    },
    weights: () => detectorWeights(det),
    loadWeights: (w, source) => setDetectorWeights(det, w, source),
    runOptions: {
      ...o.runOptions,
      epochs: o.epochs, batchSize: o.batchSize, lr: o.lr, ...sgd, warmupSteps, warmupStartFactor, seed,
      trainImages: data.records.length, maxStepsPerEpoch: o.maxStepsPerEpoch,
    },
    resume: o.resume ?? false,
    acceptChangedOptions: o.acceptChangedOptions,
    state: { classNames: o.description.categories.names, model: o.description as unknown as Record<string, unknown> },
    shortName: shortLossName,
    log: o.log,
  });
}
