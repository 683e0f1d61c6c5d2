/**
 * The detector training loop: SGD with momentum and weight decay over a warmup + cosine schedule
 * (per iteration), random horizontal flips, read-ahead decoding, a progress bar, one JSONL record per
 * epoch, and an atomic checkpoint after every epoch that `resume` continues from exactly
 * (weights, momentum buffers, schedule position, RNG).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import {
  JsonlLogger,
  Rng,
  SGD,
  createProgress,
  createWarmupCosineSchedule,
  loadCheckpoint,
  saveCheckpoint,
  sgdStep,
  timeWaits,
  type WaitMeter,
} from '@refconv/engine';
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
  /** Linear warmup iterations from `lr * 0.001` (torchvision detection reference), default 100. */
  warmupSteps?: number;
  seed?: number;
  /** Checkpoint file rewritten atomically after each epoch. */
  checkpoint: string;
  /** JSONL metrics file. */
  metricsLog: string;
  /** Continue from `checkpoint` if it exists. */
  resume?: boolean;
  /** Label of the progress bar and log records (e.g. `baseline`, `refconv`). */
  tag?: string;
  /** Stop after this many iterations per epoch (for smoke tests). */
  maxStepsPerEpoch?: number;
}

/** Per-epoch summary. */
export interface EpochRecord {
  epoch: number;
  /** Mean total loss over the epoch's iterations. */
  loss: number;
  /** Mean of each named loss term. */
  terms: Record<string, number>;
  lr: number;
  seconds: number;
  /** Seconds the loop waited for the next batch (image decoding not hidden by prefetching). */
  dataWaitSeconds: number;
}

/** Trains `det` in place; returns one record per epoch run in this call. */
export async function trainDetector(o: TrainDetectorOptions): Promise<EpochRecord[]> {
  const { det, data } = o;
  const tag = o.tag ?? 'train';
  if (!(o.epochs >= 1) || !(o.batchSize >= 1)) throw new Error(`trainDetector: epochs and batchSize must be >= 1 (got ${o.epochs}, ${o.batchSize})`);
  const stepsPerEpoch = Math.min(Math.ceil(data.records.length / o.batchSize), o.maxStepsPerEpoch ?? Infinity);
  const totalSteps = stepsPerEpoch * o.epochs;
  const schedule = createWarmupCosineSchedule({ baseLr: o.lr, totalSteps, warmupSteps: Math.min(o.warmupSteps ?? 100, totalSteps - 1), warmupStartFactor: 0.001 });
  const params = det.trainableWeights().map((w) => ({ name: w.originalName, variable: w.read() as tf.Variable }));
  const sgd = new SGD(params, { momentum: o.momentum ?? 0.9, weightDecay: o.weightDecay ?? 1e-4 });
  let rng = new Rng(o.seed ?? 0);
  let startEpoch = 0;
  let step = 0;
  if (o.resume && fs.existsSync(o.checkpoint)) {
    const ck = loadCheckpoint(o.checkpoint);
    setDetectorWeights(det, ck.weights, o.checkpoint);
    if (ck.optimizer) sgd.setState(ck.optimizer);
    if (ck.state.rng) rng = Rng.fromState(ck.state.rng);
    startEpoch = ck.state.epoch;
    step = ck.state.step;
    process.stderr.write(`[${tag}] resumed from ${o.checkpoint} after epoch ${startEpoch}\n`);
  }
  fs.mkdirSync(path.dirname(path.resolve(o.checkpoint)), { recursive: true });
  const log = new JsonlLogger(o.metricsLog, { truncate: !o.resume || startEpoch === 0 });
  const records: EpochRecord[] = [];
  try {
    for (let epoch = startEpoch; epoch < o.epochs; epoch++) {
      const order = rng.permutation(data.records.length).slice(0, stepsPerEpoch * o.batchSize);
      const flips = order.map(() => rng.bernoulli(0.5));
      const bar = createProgress({ label: `${tag} epoch ${epoch + 1}/${o.epochs}`, total: stepsPerEpoch });
      let total = 0;
      let n = 0;
      const termSums: Record<string, number> = {};
      let lr = 0;
      const dataWait: WaitMeter = { ms: 0 };
      for await (const batch of timeWaits(iterateBatches(data.records, order, o.batchSize, o.description.resize, flips), dataWait)) {
        lr = schedule.at(step);
        const images = batchTensor(batch);
        let terms: Record<string, number> = {};
        try {
          total += sgdStep(sgd, params, lr, () => {
            const l = det.losses(images, batch.targets, batch.geometry);
            terms = Object.fromEntries(Object.entries(l).map(([k, v]) => [k, v.dataSync()[0]!]));
            return tf.addN(Object.values(l)) as tf.Scalar;
          });
        } finally {
          images.dispose();
        }
        for (const [k, v] of Object.entries(terms)) termSums[k] = (termSums[k] ?? 0) + v;
        n++;
        step++;
        bar.tick(1, batch.records.length, { loss: total / n, ...Object.fromEntries(Object.entries(termSums).map(([k, v]) => [shortName(k), v / n])), lr });
      }
      const seconds = bar.finish();
      const rec: EpochRecord = { epoch: epoch + 1, loss: total / n, terms: Object.fromEntries(Object.entries(termSums).map(([k, v]) => [k, v / n])), lr, seconds, dataWaitSeconds: dataWait.ms / 1000 };
      records.push(rec);
      log.log({ tag, ...rec, tensors: tf.memory().numTensors });
      saveCheckpoint(o.checkpoint, {
        weights: detectorWeights(det),
        optimizer: sgd.getState(),
        state: { epoch: epoch + 1, step, rng: rng.getState(), classNames: o.description.categories.names, model: o.description as unknown as Record<string, unknown>, metrics: { loss: rec.loss } },
      });
    }
  } finally {
    sgd.dispose();
  }
  return records;
}

/** Compact names for the progress line (`classification` -> `cls`, `loss_box_reg` -> `box_reg`). */
function shortName(k: string): string {
  return k.replace(/^loss_/, '').replace('classification', 'cls').replace('bbox_regression', 'box');
}
