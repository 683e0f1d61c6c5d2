/**
 * The training loop: SGD + poly schedule over augmented crops, CE with ignore (plus the
 * aux loss), split-level mIoU on the validation set after every `evalEvery` epochs,
 * atomic checkpoints (`last.safetensors`, `best.safetensors`), `--resume`, JSONL metrics
 * and a curves PNG.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { countParams } from '@refconv/core';
import {
  JsonlLogger,
  Rng,
  SGD,
  createProgress,
  deriveSeed,
  lineChartPng,
  loadCheckpoint,
  modelWeights,
  type Checkpoint,
  prefetch,
  timeWaits,
  type WaitMeter,
  readJsonl,
  saveCheckpoint,
  setModelWeights,
  sgdStep,
  trainableParams,
} from '@refconv/engine';
import { DATASETS, listSamples, type DatasetFormat, type SegSample } from './data/datasets.js';
import { loadSample } from './data/io.js';
import { trainAugment, type TrainExample } from './data/transforms.js';
import { evaluateSplit } from './evaluate.js';
import { segCrossEntropy } from './loss.js';
import { metricsToJson, type SegMetrics } from './metrics.js';
import { SizedModels, createSegmenter, type BackboneFactory, type SegmenterSpec } from './model/segmenter.js';
import { enableDilatedConvGradients } from './ops/dilated-grad.js';
import { buildFromSpec, deployWeights, refocusSegmenter } from './refconv.js';
import { createPolySchedule } from './schedule.js';

/** Everything a training run needs (the CLI fills it from flags). */
export interface TrainOptions {
  data: string;
  format: DatasetFormat;
  trainSplit: string;
  valSplit: string;
  spec: SegmenterSpec;
  /** Training crop `[h, w]`. */
  cropSize: [number, number];
  /** Resize factor before the random scale (training resolution relative to the dataset's). */
  baseScale: number;
  scaleRange: [number, number];
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  warmupEpochs: number;
  /** Weight of the aux loss (torchvision 0.5). */
  auxWeight: number;
  outDir: string;
  /** Continue from `<outDir>/last.safetensors` if it exists. */
  resume: boolean;
  seed: number;
  /** Evaluate every N epochs (and always after the last). 0 = only at the end. */
  evalEvery: number;
  /** Use only the first N train / val samples (smoke tests). */
  limitTrain?: number;
  limitVal?: number;
  /** Initialise weights from this checkpoint (a trained plain segmenter of the same spec). */
  init?: string;
  /** Refocus after loading `init` (RefConv fine-tuning). */
  refconv?: { mapK: 1 | 3 | 5; aspp: boolean; init?: 'default' | 'zero' };
  /** Backbone factory override (tests). */
  backboneFactory?: BackboneFactory;
  /** Where progress goes (default stderr). */
  progressStream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Print a line (default console.log). */
  log?: (line: string) => void;
}

/** What a finished run reports. */
export interface TrainResult {
  metrics: SegMetrics;
  bestMIoU: number;
  checkpoint: string;
  params: number;
  epochs: number;
}

interface Batch {
  x: Float32Array;
  y: Int32Array;
  n: number;
}

async function loadBatch(samples: SegSample[], order: number[], start: number, opts: TrainOptions, epoch: number): Promise<Batch> {
  const idx = order.slice(start, start + opts.batchSize);
  const info = DATASETS[opts.format];
  const examples: TrainExample[] = await Promise.all(
    idx.map(async (i) => {
      const s = await loadSample(samples[i]!);
      const rng = new Rng(deriveSeed(opts.seed, epoch, i));
      return trainAugment(s.image, s.mask, { cropSize: opts.cropSize, baseScale: opts.baseScale, scaleRange: opts.scaleRange, mean: info.mean, std: info.std }, () => rng.random());
    }),
  );
  const [h, w] = opts.cropSize;
  const x = new Float32Array(idx.length * h * w * 3);
  const y = new Int32Array(idx.length * h * w);
  examples.forEach((e, k) => {
    x.set(e.image, k * h * w * 3);
    y.set(e.mask, k * h * w);
  });
  return { x, y, n: idx.length };
}

function limit<T>(items: T[], n?: number): T[] {
  return n !== undefined && n > 0 ? items.slice(0, n) : items;
}

/** Loads the weights of a plain checkpoint into `model` (spec must match); errors name the file. */
function initFrom(model: tf.LayersModel, file: string, spec: SegmenterSpec): void {
  const ck = loadCheckpoint(file);
  const theirs = ck.state.model as unknown as SegmenterSpec | undefined;
  if (theirs?.refconv) throw new Error(`--init ${file} is a refocused checkpoint; initialise from a plain (baseline) one`);
  if (theirs && (theirs.arch !== spec.arch || theirs.backbone !== spec.backbone || theirs.numClasses !== spec.numClasses)) {
    throw new Error(`--init ${file} holds a ${theirs.arch}/${theirs.backbone} with ${theirs.numClasses} classes; this run is ${spec.arch}/${spec.backbone} with ${spec.numClasses}`);
  }
  setModelWeights(model, ck.weights, { source: file });
}

/**
 * The model to train: rebuilt from the checkpoint when resuming; else the plain segmenter,
 * optionally initialised from `--init` and refocused.
 */
function setupModel(opts: TrainOptions, resumed: Checkpoint | undefined, log: (s: string) => void): { model: tf.LayersModel; spec: SegmenterSpec } {
  if (resumed) {
    const spec = resumed.state.model as unknown as SegmenterSpec;
    const model = buildFromSpec(spec, opts.cropSize, opts.backboneFactory);
    setModelWeights(model, resumed.weights, { source: join(opts.outDir, 'last.safetensors') });
    log(`resuming ${join(opts.outDir, 'last.safetensors')} after epoch ${resumed.state.epoch}`);
    return { model, spec };
  }
  const spec: SegmenterSpec = { ...opts.spec };
  const plain = createSegmenter(spec, opts.cropSize, opts.backboneFactory);
  if (opts.init) initFrom(plain, opts.init, spec);
  if (!opts.refconv) return { model: plain, spec };
  const { mapK, aspp, init } = opts.refconv;
  const r = refocusSegmenter(plain, { mapK, aspp, init, seed: opts.seed });
  plain.dispose();
  log(`refocused ${r.layers.length} convs (map ${mapK}x${mapK}${aspp ? ', incl. ASPP' : ''}, ${init ?? 'default'} init)`);
  return { model: r.model, spec: { ...spec, refconv: { mapK, aspp, layers: r.layers } } };
}

/** Loss of one batch: CE with ignore on the main logits (+ auxWeight x CE on the aux logits). */
function batchLoss(model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor3D, auxWeight: number): tf.Scalar {
  const out = model.apply(x, { training: true }) as tf.Tensor | tf.Tensor[];
  const outs = Array.isArray(out) ? out : [out];
  let loss = segCrossEntropy(outs[0] as tf.Tensor4D, y);
  if (outs[1] && auxWeight > 0) loss = tf.add(loss, tf.mul(auxWeight, segCrossEntropy(outs[1] as tf.Tensor4D, y)));
  return loss as tf.Scalar;
}

/** Split-level metrics of the model in its deployed (fused) form, whole images at the training scale. */
async function validate(model: tf.LayersModel, spec: SegmenterSpec, samples: SegSample[], opts: TrainOptions, epoch: number): Promise<SegMetrics> {
  const info = DATASETS[opts.format];
  const models = new SizedModels(spec, deployWeights(model, spec), opts.backboneFactory, 1);
  try {
    const common = { info, mode: 'whole' as const, baseScale: opts.baseScale, scales: [1], flip: false, mean: info.mean, std: info.std };
    return (await evaluateSplit(models, samples, { ...common, label: `val ${epoch}`, progress: true })).metrics;
  } finally {
    models.dispose();
  }
}

/** Runs (or resumes) a training run; see {@link TrainOptions}. */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  enableDilatedConvGradients();
  const log = opts.log ?? ((s: string) => console.log(s));
  const info = DATASETS[opts.format];
  const trainSamples = limit(listSamples(opts.format, opts.data, { split: opts.trainSplit }), opts.limitTrain);
  const valSamples = limit(listSamples(opts.format, opts.data, { split: opts.valSplit }), opts.limitVal);
  mkdirSync(opts.outDir, { recursive: true });
  const lastFile = join(opts.outDir, 'last.safetensors');
  const bestFile = join(opts.outDir, 'best.safetensors');
  const resumed = opts.resume && existsSync(lastFile) ? loadCheckpoint(lastFile) : undefined;
  const { model, spec } = setupModel(opts, resumed, log);

  const params = trainableParams(model);
  const optimizer = new SGD(params, { momentum: opts.momentum, weightDecay: opts.weightDecay });
  if (resumed?.optimizer) optimizer.setState(resumed.optimizer);
  const stepsPerEpoch = Math.ceil(trainSamples.length / opts.batchSize);
  const totalSteps = opts.epochs * stepsPerEpoch;
  // warmup is capped so that a 1-epoch run still has a decaying part
  const schedule = createPolySchedule({ baseLr: opts.lr, totalSteps, warmupSteps: Math.min(opts.warmupEpochs * stepsPerEpoch, totalSteps - 1) });
  const nParams = countParams(model);
  log(
    `${spec.arch} on ${spec.backbone} (width ${spec.backboneWidth}, OS${spec.outputStride}): ${(nParams / 1e6).toFixed(3)}M params, ` +
      `${params.length} trainable tensors; ${trainSamples.length} train / ${valSamples.length} val images; crop ${opts.cropSize.join('x')} at scale ${opts.baseScale}`,
  );

  const metricsLog = new JsonlLogger(join(opts.outDir, 'metrics.jsonl'), { truncate: !resumed });
  let step = resumed?.state.step ?? 0;
  let bestMIoU = (resumed?.state.extra?.bestMIoU as number | undefined) ?? -1;
  let last: SegMetrics | undefined;
  const [h, w] = opts.cropSize;
  for (let epoch = resumed?.state.epoch ?? 0; epoch < opts.epochs; epoch++) {
    const order = new Rng(deriveSeed(opts.seed, epoch)).permutation(trainSamples.length);
    const bar = createProgress({ label: `epoch ${epoch + 1}/${opts.epochs}`, total: stepsPerEpoch, stream: opts.progressStream });
    let lossSum = 0;
    const dataWait: WaitMeter = { ms: 0 };
    for await (const batch of timeWaits(prefetch(stepsPerEpoch, (b) => loadBatch(trainSamples, order, b * opts.batchSize, opts, epoch), 2), dataWait)) {
      const lr = schedule.at(step);
      const x = tf.tensor4d(batch.x, [batch.n, h, w, 3]);
      const y = tf.tensor3d(batch.y, [batch.n, h, w], 'int32');
      const loss = sgdStep(optimizer, params, lr, () => batchLoss(model, x, y, opts.auxWeight));
      tf.dispose([x, y]);
      step++;
      lossSum += loss;
      bar.tick(1, batch.n, { loss, lr });
    }
    const trainLoss = lossSum / stepsPerEpoch;
    const trainSeconds = bar.finish({ loss: trainLoss });
    const record: Record<string, unknown> = { epoch: epoch + 1, step, trainLoss, lr: schedule.at(step - 1), trainSeconds, dataWaitSeconds: dataWait.ms / 1000 };
    const doEval = epoch + 1 === opts.epochs || (opts.evalEvery > 0 && (epoch + 1) % opts.evalEvery === 0);
    let line = `epoch ${epoch + 1}: train loss ${trainLoss.toFixed(4)} (waiting for data ${((100 * dataWait.ms) / 1000 / trainSeconds).toFixed(1)}% of train time)`;
    if (doEval) {
      last = await validate(model, spec, valSamples, opts, epoch + 1);
      record.val = metricsToJson(last, info.classNames);
      line += `, val mIoU ${(100 * last.mIoU).toFixed(2)} aAcc ${(100 * last.pixelAccuracy).toFixed(2)} mAcc ${(100 * last.meanAccuracy).toFixed(2)}`;
    }
    log(line);
    metricsLog.log(record);
    const improved = doEval && last !== undefined && last.mIoU > bestMIoU;
    if (improved) bestMIoU = last!.mIoU;
    const state = {
      epoch: epoch + 1,
      step,
      classNames: [...info.classNames],
      model: spec as unknown as Record<string, unknown>,
      metrics: last ? { mIoU: last.mIoU, pixelAccuracy: last.pixelAccuracy, meanAccuracy: last.meanAccuracy } : undefined,
      extra: { bestMIoU, format: opts.format, baseScale: opts.baseScale, cropSize: opts.cropSize, mean: info.mean, std: info.std, schedule: schedule.describe() },
    };
    const weights = modelWeights(model);
    saveCheckpoint(lastFile, { weights, optimizer: optimizer.getState(), state });
    if (improved) saveCheckpoint(bestFile, { weights, state });
    await writeCurves(opts.outDir).catch((e: Error) => log(`(could not draw curves: ${e.message})`));
  }
  optimizer.dispose();
  model.dispose();
  if (!last) {
    // resumed a run that had already finished: report the stored metrics
    const stored = resumed?.state.metrics;
    if (!stored) throw new Error(`${lastFile}: run already finished but the checkpoint holds no metrics`);
    last = { mIoU: stored.mIoU!, pixelAccuracy: stored.pixelAccuracy!, meanAccuracy: stored.meanAccuracy!, iou: [], accuracy: [], numPixels: 0 };
  }
  return { metrics: last, bestMIoU, checkpoint: lastFile, params: nParams, epochs: opts.epochs };
}

/** `curves.png`: train loss and val mIoU per epoch, from `metrics.jsonl`. */
async function writeCurves(outDir: string): Promise<void> {
  const rows = readJsonl<{ epoch: number; trainLoss: number; val?: { mIoU: number | null } }>(join(outDir, 'metrics.jsonl'));
  await lineChartPng(join(outDir, 'curves.png'), {
    title: 'training curves',
    xLabel: 'epoch',
    yLabel: 'value',
    series: [
      { name: 'train loss', points: rows.map((r) => [r.epoch, r.trainLoss]) },
      { name: 'val mIoU', points: rows.filter((r) => r.val?.mIoU != null).map((r) => [r.epoch, r.val!.mIoU!]) },
    ],
  });
}
