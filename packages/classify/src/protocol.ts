/**
 * The RefConv protocol: pretrain a baseline, then from the same baseline train (a) the
 * refocused model (RefConv2D layers, bases frozen) and (b) the equal-epoch control (plain
 * continued training, same epochs and schedule), fuse the refocused model back to plain
 * convolutions, and evaluate all four (baseline, control, RefConv, fused) on the val split
 * with params, FLOPs and latency. Repeated for every seed.
 *
 * Layout: `<out>/seed-<s>/{pretrain,refocus,control}/` (see train.ts), `<out>/seed-<s>/fused.safetensors`,
 * `<out>/seed-<s>/eval.json`, and `<out>/report.md`, `<out>/results.json`, `<out>/*.png` (see report.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { countFlops, countParams, fuse } from '@refconv/core';
import { assertFiniteWeights, loadCheckpoint, modelWeights, Rng, saveCheckpoint, setModelWeights, writeFileAtomic, type OptionChange } from '@refconv/engine';
import { IMAGENET_MEAN, IMAGENET_STD } from '@refconv/engine';
import type { RunConfig, Stage } from './config.js';
import { subsetSplit, type ClassificationData, type Split } from './data/dataset.js';
import { FASHION_MNIST_MEAN, FASHION_MNIST_STD } from './data/fashion-mnist.js';
import { cacheSplit } from './data/cache.js';
import { BatchLoader, type BadImage } from './data/loader.js';
import { openDataset } from './data/open.js';
import type { EvalTransformSpec, TrainTransformSpec } from './data/transforms.js';
import { evaluate, type EvalResult } from './evaluate.js';
import { measureLatency, type Latency } from './latency.js';
import { buildBaseline, loadClassifier, refocusModel, type ModelSpec } from './model.js';
import { trainStage, type EpochRecord } from './train.js';

/** The four models the protocol compares. */
export const MODEL_KINDS = ['baseline', 'control', 'refconv', 'fused'] as const;
export type ModelKindName = (typeof MODEL_KINDS)[number];

/** Evaluation summary of one model. */
export interface ModelSummary {
  checkpoint: string;
  params: number;
  trainableParams: number;
  flops: number;
  top1: number;
  top5: number;
  loss: number;
  images: number;
  latency: Latency;
}

/** Everything measured for one seed. */
export interface SeedResult {
  seed: number;
  histories: Partial<Record<'pretrain' | 'refocus' | 'control', EpochRecord[]>>;
  models: Partial<Record<ModelKindName, ModelSummary>>;
  /** Images whose fused prediction differs from the unfused RefConv prediction. */
  fusedPredictionMismatches?: number;
  /** Options changed on `--resume --accept-changed-options`, per stage (old -> new). */
  changedOptions?: Array<OptionChange & { stage: string }>;
  badImages: BadImage[];
}

/** Data and transforms prepared once per run. */
export interface PreparedData {
  data: ClassificationData;
  train: Split;
  val: Split;
  trainTransform: TrainTransformSpec;
  evalTransform: EvalTransformSpec;
}

function fixedSubset(split: Split, limit: number | undefined, salt: number): Split {
  if (limit === undefined || limit >= split.size) return split;
  // the same subset for every seed, so seeds differ only in init, order and augmentation
  const idx = new Rng(1234 + salt).permutation(split.size).slice(0, limit).sort((a, b) => a - b);
  return subsetSplit(split, idx);
}

/**
 * Opens the dataset and builds the transforms a config describes; with `cacheResize`, decodes
 * every image once into memory (see data/cache.ts).
 */
export async function prepareData(cfg: RunConfig, bad: BadImage[] = []): Promise<PreparedData> {
  const data = openDataset(cfg.data, cfg.format, { valLabels: cfg.valLabels });
  const grey = data.channels === 1;
  const mean = grey ? FASHION_MNIST_MEAN : [...IMAGENET_MEAN];
  const std = grey ? FASHION_MNIST_STD : [...IMAGENET_STD];
  const evalResize = cfg.evalResize ?? (data.nativeSize === cfg.inputSize ? cfg.inputSize : Math.round(cfg.inputSize / 0.875));
  let train = fixedSubset(data.train, cfg.trainLimit, 0);
  let val = fixedSubset(data.val, cfg.valLimit, 1);
  if (cfg.cacheResize) {
    process.stderr.write(`caching ${train.size + val.size} images at shorter side ${cfg.cacheResize}...\n`);
    train = await cacheSplit(train, cfg.cacheResize, data.channels, { skipBad: cfg.skipBadImages, bad });
    val = await cacheSplit(val, cfg.cacheResize, data.channels, { skipBad: cfg.skipBadImages, bad });
  }
  return {
    data,
    train,
    val,
    trainTransform: { kind: 'train', size: cfg.inputSize, scale: cfg.scale, ratio: cfg.ratio, flipProb: cfg.flipProb, channels: data.channels, mean, std },
    evalTransform: { kind: 'eval', resize: evalResize, crop: cfg.inputSize, channels: data.channels, mean, std },
  };
}

const has = (cfg: RunConfig, s: Stage) => cfg.stages.includes(s);

function requireFile(file: string, what: string): string {
  if (!fs.existsSync(file)) throw new Error(`${what}: ${file} does not exist (run that stage first, or pass --resume with the same --out)`);
  return file;
}

/** Loads a checkpoint's weights into a model (strict: names and shapes must match). */
function loadInto(model: tf.LayersModel, file: string): void {
  setModelWeights(model, loadCheckpoint(file).weights, { source: file });
}

async function summarize(kind: ModelKindName, file: string, p: PreparedData, loader: BatchLoader, cfg: RunConfig): Promise<{ summary: ModelSummary; result: EvalResult }> {
  const { model } = loadClassifier(file);
  try {
    const result = await evaluate(model, p.val, loader, p.evalTransform, { classNames: p.data.classNames, label: `[eval ${kind}]` });
    const summary: ModelSummary = {
      checkpoint: file,
      params: countParams(model),
      trainableParams: countParams(model, { trainableOnly: true }),
      flops: countFlops(model),
      top1: result.top1,
      top5: result.top5,
      loss: result.loss,
      images: result.images,
      latency: measureLatency(model, { runs: cfg.latencyRuns }),
    };
    return { summary, result };
  } finally {
    model.dispose();
  }
}

/** Runs every configured stage for one seed. */
export async function runSeed(cfg: RunConfig, seed: number, p: PreparedData, loader: BatchLoader): Promise<SeedResult> {
  const dir = path.join(cfg.out, `seed-${seed}`);
  fs.mkdirSync(dir, { recursive: true });
  const spec: ModelSpec = { arch: cfg.arch, numClasses: p.data.classNames.length, inputSize: cfg.inputSize, inChannels: p.data.channels, width: cfg.width };
  const common = {
    classNames: p.data.classNames, seed, train: p.train, val: p.val, loader, trainTransform: p.trainTransform, evalTransform: p.evalTransform,
    resume: cfg.resume, acceptChangedOptions: cfg.acceptChangedOptions, extra: { config: cfg },
  };
  // what changes a stage's result besides its own schedule, seed and split sizes (compared on --resume)
  const dataOptions = { format: cfg.format, inputSize: cfg.inputSize, evalResize: cfg.evalResize, scale: cfg.scale, ratio: cfg.ratio, flipProb: cfg.flipProb, cacheResize: cfg.cacheResize, trainLimit: cfg.trainLimit, valLimit: cfg.valLimit };
  const result: SeedResult = { seed, histories: {}, models: {}, badImages: [] };
  const files = {
    baseline: cfg.baseline ?? path.join(dir, 'pretrain', 'final.safetensors'),
    control: path.join(dir, 'control', 'final.safetensors'),
    refconv: path.join(dir, 'refocus', 'final.safetensors'),
    fused: path.join(dir, 'fused.safetensors'),
  };

  if (has(cfg, 'pretrain') && !cfg.baseline) {
    const model = buildBaseline(spec, seed);
    const r = await trainStage({ ...common, name: 'pretrain', dir: path.join(dir, 'pretrain'), model, spec, optim: cfg.pretrain, runOptions: { spec, data: dataOptions } });
    result.histories.pretrain = r.history;
    if (r.changedOptions.length) result.changedOptions = r.changedOptions.map((c) => ({ stage: 'pretrain', ...c }));
    model.dispose();
  }

  for (const stage of ['refocus', 'control'] as const) {
    if (!has(cfg, stage)) continue;
    const base = buildBaseline(spec, seed);
    loadInto(base, requireFile(files.baseline, `${stage} needs the baseline checkpoint`));
    const model = stage === 'refocus' ? refocusModel(base, cfg.refocus, seed) : base;
    const stageSpec = stage === 'refocus' ? { ...spec, refocus: cfg.refocus } : spec;
    const r = await trainStage({ ...common, name: stage, dir: path.join(dir, stage), model, spec: stageSpec, optim: cfg.finetune, runOptions: { spec: stageSpec, data: dataOptions, baseline: cfg.baseline ?? 'pretrain' } });
    if (r.changedOptions.length) result.changedOptions = [...(result.changedOptions ?? []), ...r.changedOptions.map((c) => ({ stage, ...c }))];
    result.histories[stage] = r.history;
    if (model !== base) model.dispose();
    base.dispose();
  }

  if (has(cfg, 'fuse')) {
    const { model, spec: refSpec, checkpoint } = loadClassifier(requireFile(files.refconv, 'fuse needs the trained RefConv checkpoint'));
    const fused = fuse(model);
    const fusedWeights = modelWeights(fused);
    assertFiniteWeights(fusedWeights, `[fuse] ${files.fused}`);
    saveCheckpoint(files.fused, { weights: fusedWeights, state: { ...checkpoint.state, model: { ...refSpec, fused: true } as unknown as Record<string, unknown> } });
    process.stderr.write(`[fuse] wrote ${files.fused}\n`);
    model.dispose();
    fused.dispose();
  }

  if (has(cfg, 'eval')) {
    const evals: Partial<Record<ModelKindName, EvalResult>> = {};
    for (const kind of MODEL_KINDS) {
      if (!fs.existsSync(files[kind])) {
        process.stderr.write(`[eval] skipping ${kind}: ${files[kind]} does not exist\n`);
        continue;
      }
      const { summary, result: ev } = await summarize(kind, files[kind], p, loader, cfg);
      result.models[kind] = summary;
      evals[kind] = ev;
    }
    if (evals.refconv && evals.fused) {
      let diff = 0;
      evals.refconv.predictions.forEach((v, i) => (diff += v === evals.fused!.predictions[i] ? 0 : 1));
      result.fusedPredictionMismatches = diff;
    }
  }
  result.badImages = [...loader.badImages];
  writeFileAtomic(path.join(dir, 'eval.json'), JSON.stringify(result, null, 1));
  return result;
}
