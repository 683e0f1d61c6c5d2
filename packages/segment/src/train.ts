/**
 * A segmentation training run on @refconv/engine's shared epoch loop (`runEpochs`: resume,
 * changed-options check, finite checks, atomic checkpoints): SGD + poly schedule over augmented
 * crops, CE with ignore (plus the aux loss), split-level mIoU on the validation set every
 * `evalEvery` epochs, `last.safetensors` and `best.safetensors` (by val mIoU), JSONL metrics and a
 * curves PNG.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { countParams } from '@refconv/core';
import {
  createPolySchedule, deriveSeed, lineChartPng, loadCheckpoint, modelWeights, prefetch, readJsonl, reseedWeights, Rng, runEpochs, setModelWeights, sgdStep,
  trainableParams, warmupStepsOf, type Checkpoint, type OptionChange,
} from '@refconv/engine';
import { DATASETS, listSamples, type DatasetFormat, type SegSample } from './data/datasets.js';
import { loadSample } from './data/io.js';
import { trainAugment, type TrainExample } from './data/transforms.js';
import { evaluateSplit } from './evaluate.js';
import { segCrossEntropy } from './loss.js';
import { metricsToJson, type SegMetrics } from './metrics.js';
import { SizedModels, createSegmenter, type BackboneFactory, type SegmenterSpec } from './model/segmenter.js';
import { enableDilatedConvGradients } from '@refconv/core';
import { buildFromSpec, deployWeights, refocusSegmenter } from './model/segmenter-refconv.js';

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
  /** Warmup in iterations; replaces `warmupEpochs` when set. */
  warmupSteps?: number;
  /** LR at the start of warmup as a fraction of `lr` (default 0.01). */
  warmupStartFactor?: number;
  /** Weight of the aux loss (torchvision 0.5). */
  auxWeight: number;
  outDir: string;
  /** Continue from `<outDir>/last.safetensors` if it exists. */
  resume: boolean;
  /** With `resume`: continue although options differ from the stored run (logged). */
  acceptChangedOptions?: boolean;
  seed: number;
  /** Evaluate every N epochs (and always after the last). 0 = only at the end. */
  evalEvery: number;
  /** Use only the first N train / val samples (smoke tests). */
  trainLimit?: number;
  valLimit?: number;
  /** Start from this checkpoint (a trained plain segmenter of the same spec). */
  from?: string;
  /** Refocus after loading `from` (RefConv fine-tuning). */
  refconv?: { mapK: 1 | 3 | 5; aspp: boolean; init?: 'default' | 'zero'; grouping?: 'official' | 'per-kernel' | 'full'; frozen?: 'official' | 'transform-only' };
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
  /** Option changes accepted on resume. */
  changedOptions: OptionChange[];
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
  if (theirs?.refconv) throw new Error(`--from ${file} is a refocused checkpoint; start from a plain (baseline) one`);
  if (theirs && (theirs.arch !== spec.arch || theirs.backbone !== spec.backbone || theirs.numClasses !== spec.numClasses)) {
    throw new Error(`--from ${file} holds a ${theirs.arch}/${theirs.backbone} with ${theirs.numClasses} classes; this run is ${spec.arch}/${spec.backbone} with ${spec.numClasses}`);
  }
  setModelWeights(model, ck.weights, { source: file });
}

/**
 * The model to train: rebuilt from the checkpoint's spec when resuming (the loop loads the
 * weights); else the plain segmenter, optionally started from `--from` and refocused.
 */
function setupModel(opts: TrainOptions, resumed: Checkpoint | undefined, log: (s: string) => void): { model: tf.LayersModel; spec: SegmenterSpec } {
  if (resumed) {
    const spec = resumed.state.model as unknown as SegmenterSpec;
    return { model: buildFromSpec(spec, opts.cropSize, opts.backboneFactory), spec };
  }
  const spec: SegmenterSpec = { ...opts.spec };
  const plain = createSegmenter(spec, opts.cropSize, opts.backboneFactory);
  reseedSegmenter(plain, opts.seed);
  if (opts.from) initFrom(plain, opts.from, spec);
  if (!opts.refconv) return { model: plain, spec };
  const { mapK, aspp, init, grouping, frozen } = opts.refconv;
  const r = refocusSegmenter(plain, { mapK, aspp, init, grouping, frozen, seed: opts.seed });
  plain.dispose();
  log(`refocused ${r.layers.length} convs (map ${mapK}x${mapK}${aspp ? ', incl. ASPP' : ''}, ${init ?? 'default'} init)`);
  return { model: r.model, spec: { ...spec, refconv: { mapK, aspp, layers: r.layers, ...(grouping ? { grouping } : {}), ...(frozen ? { frozen } : {}) } } };
}

/**
 * Re-draws the random initial weights from `seed` (tfjs initialisers are unseeded, so two
 * processes would otherwise start differently), the nested backbone included.
 */
function reseedSegmenter(model: tf.LayersModel, seed: number): void {
  model.layers.forEach((l, i) => {
    if (l instanceof tf.LayersModel) reseedWeights(l, deriveSeed(seed, 1_000_003, i));
  });
  reseedWeights(model, seed);
}

/** The model's dropout layers (nested models included). */
function dropoutLayers(model: tf.LayersModel): Array<{ seed?: number }> {
  return model.layers.flatMap((l) => (l instanceof tf.LayersModel ? dropoutLayers(l) : l.getClassName() === 'Dropout' ? [l as unknown as { seed?: number }] : []));
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
  const trainSamples = limit(listSamples(opts.format, opts.data, { split: opts.trainSplit }), opts.trainLimit);
  const valSamples = limit(listSamples(opts.format, opts.data, { split: opts.valSplit }), opts.valLimit);
  const lastFile = join(opts.outDir, 'last.safetensors');
  // the spec (refocused layers included) of a resumed run comes from its checkpoint
  const resumed = opts.resume && existsSync(lastFile) ? loadCheckpoint(lastFile) : undefined;
  const { model, spec } = setupModel(opts, resumed, log);
  try {
    const params = trainableParams(model);
    const stepsPerEpoch = Math.ceil(trainSamples.length / opts.batchSize);
    const totalSteps = opts.epochs * stepsPerEpoch;
    // warmup is capped so that a 1-epoch run still has a decaying part
    const warmupSteps = Math.min(warmupStepsOf(opts, stepsPerEpoch), totalSteps - 1);
    const schedule = createPolySchedule({ baseLr: opts.lr, totalSteps, warmupSteps, warmupStartFactor: opts.warmupStartFactor });
    const nParams = countParams(model);
    log(
      `${spec.arch} on ${spec.backbone} (width ${spec.backboneWidth}, OS${spec.outputStride}): ${(nParams / 1e6).toFixed(3)}M params, ` +
        `${params.length} trainable tensors; ${trainSamples.length} train / ${valSamples.length} val images; crop ${opts.cropSize.join('x')} at scale ${opts.baseScale}`,
    );
    const [h, w] = opts.cropSize;
    // dropout masks drawn from (seed, optimizer step), so a resumed run continues the same masks
    const dropouts = dropoutLayers(model);
    let last: SegMetrics | undefined;
    const r = await runEpochs({
      name: 'train',
      dir: opts.outDir,
      params,
      sgd: { momentum: opts.momentum, weightDecay: opts.weightDecay },
      schedule,
      epochs: opts.epochs,
      stepsPerEpoch,
      seedPath: [opts.seed],
      batches: (epoch, rng) => {
        const order = rng.permutation(trainSamples.length);
        return prefetch(stepsPerEpoch, (b) => loadBatch(trainSamples, order, b * opts.batchSize, opts, epoch), 2);
      },
      step: (batch, lr, opt) => {
        for (const d of dropouts) d.seed = deriveSeed(opts.seed, 0xd0, opt.stepCount);
        const x = tf.tensor4d(batch.x, [batch.n, h, w, 3]);
        const y = tf.tensor3d(batch.y, [batch.n, h, w], 'int32');
        try {
          return { loss: sgdStep(opt, params, lr, () => batchLoss(model, x, y, opts.auxWeight)), n: batch.n };
        } finally {
          tf.dispose([x, y]);
        }
      },
      evaluate: async (epoch) => {
        last = await validate(model, spec, valSamples, opts, epoch);
        return { metrics: { mIoU: last.mIoU, pixelAccuracy: last.pixelAccuracy, meanAccuracy: last.meanAccuracy }, details: { perClass: metricsToJson(last, info.classNames) } };
      },
      evalEvery: opts.evalEvery,
      weights: () => modelWeights(model),
      loadWeights: (weights, source) => setModelWeights(model, weights, { source }),
      best: { metric: 'mIoU', mode: 'max' },
      runOptions: {
        format: opts.format, trainSplit: opts.trainSplit, valSplit: opts.valSplit, spec: opts.spec, cropSize: opts.cropSize, baseScale: opts.baseScale,
        scaleRange: opts.scaleRange, epochs: opts.epochs, batchSize: opts.batchSize, lr: opts.lr, momentum: opts.momentum, weightDecay: opts.weightDecay,
        warmupSteps, warmupStartFactor: opts.warmupStartFactor ?? 0.01, auxWeight: opts.auxWeight, seed: opts.seed,
        trainLimit: opts.trainLimit, valLimit: opts.valLimit, from: opts.from, refconv: opts.refconv,
      },
      resume: opts.resume,
      acceptChangedOptions: opts.acceptChangedOptions,
      state: {
        classNames: [...info.classNames],
        model: spec as unknown as Record<string, unknown>,
        extra: { format: opts.format, baseScale: opts.baseScale, cropSize: opts.cropSize, mean: info.mean, std: info.std, schedule: schedule.describe() },
      },
      progressStream: opts.progressStream,
      log,
      afterEpoch: () => writeCurves(opts.outDir).catch((e: Error) => log(`(could not draw curves: ${e.message})`)),
    });
    const stored = r.state.metrics;
    if (!last) {
      // resumed a run that had already finished: report the stored metrics
      if (!stored) throw new Error(`${lastFile}: run already finished but the checkpoint holds no metrics`);
      last = { mIoU: stored.mIoU!, pixelAccuracy: stored.pixelAccuracy!, meanAccuracy: stored.meanAccuracy!, iou: [], accuracy: [], numPixels: 0 };
    }
    const best = (r.state.extra?.loop as { best?: { value: number } } | undefined)?.best;
    return { metrics: last, bestMIoU: best?.value ?? -1, checkpoint: lastFile, params: nParams, epochs: opts.epochs, changedOptions: r.changedOptions };
  } finally {
    model.dispose();
  }
}

/** `curves.png`: train loss and val mIoU per epoch, from `metrics.jsonl`. */
async function writeCurves(outDir: string): Promise<void> {
  const rows = readJsonl<{ type?: string; epoch: number; trainLoss: number; val?: { mIoU: number | null } }>(join(outDir, 'metrics.jsonl')).filter((r) => r.type === 'epoch');
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
