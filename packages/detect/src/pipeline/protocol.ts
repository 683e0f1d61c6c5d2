/**
 * The detection protocol as a library call (the CLI only parses flags): build a detector (or load
 * a trained one with `from`), optionally refocus it with RefConv, train it on the shared epoch
 * loop, fuse a refocused detector back to plain convolutions, write `final.safetensors`, and
 * evaluate it with COCO metrics on the test split (results JSON, stats JSON, drawn detections).
 *
 * Both splits are opened and validated before the detector is trained.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { countParams, fuse, writeFileAtomic } from '@refconv/core';
import * as tf from '@tensorflow/tfjs';
import { assertFiniteWeights, deriveSeed, reseedWeights, saveCheckpoint, type EpochRecord, type OptionChange } from '@refconv/engine';
import type { DetectionDataset } from '../data/dataset.js';
import { openDataset } from '../data/open.js';
import { formatDatasetSummary } from '../data/validation.js';
import type { Detector } from '../models/detector.js';
import type { BoxLossKind } from '../models/retinanet.js';
import { createDetector, detectorWeights, loadDetector, refocusDetector, type DetectorDescription, type RefocusScope, type RefocusSpec } from './checkpoint.js';
import { evaluateDetector, type EvaluationResult } from './evaluate.js';
import { trainDetector } from './train.js';

/** Everything a detection run needs (the CLI fills it from flags). */
export interface DetectionRunOptions {
  /** VOC root or COCO root / annotation JSON. */
  data: string;
  trainSplit: string;
  /** Split evaluated after training (validated before it). */
  testSplit: string;
  /** COCO image folder when `data` is a JSON file. */
  images?: string;
  /** Class names in label order (default: the checkpoint's, else the dataset's). */
  classes?: string[];
  /** Drop (and count) objects of other classes instead of failing. */
  dropUnknownClasses?: boolean;
  /** Run folder; default `<runsDir>/<name>`. */
  out?: string;
  /** Parent of the default run folder. */
  runsDir: string;
  /** Run name (default `bccd-<kind>[-refconv|-finetune]`). */
  name?: string;
  model: 'retinanet' | 'fasterrcnn';
  /** Faster R-CNN box head FC width. */
  representationSize: number;
  backbone: string;
  backboneWidth: number;
  /** ImageNet backbone weights (implies frozen BN). */
  backboneWeights?: string;
  fpnChannels: number;
  headConvs: number;
  /** P3 anchor size; levels double it. */
  anchorBase: number;
  minSize: number;
  maxSize: number;
  boxLoss: BoxLossKind;
  freezeBn: boolean;
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  /** Warmup in iterations, or in epochs; default 100 iterations. */
  warmupSteps?: number;
  warmupEpochs?: number;
  warmupStartFactor: number;
  seed: number;
  /** Trained detector checkpoint to start from. */
  from?: string;
  /** Refocus the `from` detector, train, fuse. */
  refconv: boolean;
  refconvScope: RefocusScope;
  mapK: 1 | 3 | 5;
  grouping: 'official' | 'per-kernel' | 'full';
  refconvInit: 'default' | 'zero';
  frozen: 'official' | 'transform-only';
  resume: boolean;
  acceptChangedOptions: boolean;
  /** Use only the first N training / test images. */
  trainLimit?: number;
  testLimit?: number;
  /** Write N test images with drawn detections. */
  visualize: number;
  /** Prints a line (default console.log). */
  log?: (line: string) => void;
}

/** What a finished run leaves behind. */
export interface DetectionRunResult {
  outDir: string;
  /** The deployable detector (fused when refocused). */
  finalFile: string;
  /** The training state (`--resume`). */
  lastFile: string;
  history: EpochRecord[];
  changedOptions: OptionChange[];
  test: DetectionDataset;
  evaluation: EvaluationResult;
}

/** The detector description of a fresh (not `from`) run. */
function describeDetector(o: DetectionRunOptions, categories: DetectionDataset['categories']): DetectorDescription {
  const common = {
    numClasses: categories.names.length,
    backbone: { arch: o.backbone, width: o.backboneWidth, ...(o.backboneWeights ? { weights: path.resolve(o.backboneWeights) } : {}) },
    fpnChannels: o.fpnChannels,
    freezeBatchNorm: o.freezeBn || Boolean(o.backboneWeights),
    seed: o.seed,
  };
  const levels = [0, 1, 2, 3, 4].map((l) => o.anchorBase * 2 ** l);
  const base = { categories, resize: { minSize: o.minSize, maxSize: o.maxSize } };
  if (o.model === 'retinanet') {
    return { ...base, kind: 'retinanet', options: { ...common, headConvs: o.headConvs, anchorSizes: levels.map((s) => [0, 1 / 3, 2 / 3].map((e) => Math.trunc(s * 2 ** e))), boxLoss: o.boxLoss } };
  }
  // torchvision's sampling sizes; proposal counts reduced for CPU (torchvision: 2000/2000 train, 1000/1000 test)
  return { ...base, kind: 'fasterrcnn', options: { ...common, representationSize: o.representationSize, anchorSizes: levels, rpnPreNmsTopN: { train: 1000, test: 500 }, rpnPostNmsTopN: { train: 500, test: 300 } } };
}

/** Runs the protocol (see module doc) and evaluates the deployable detector. */
export async function runDetection(o: DetectionRunOptions): Promise<DetectionRunResult> {
  const log = o.log ?? ((s: string) => console.log(s));
  if (o.refconv && !o.from) throw new Error('--refconv needs --from <trained detector checkpoint>');
  const classArgs = { classes: o.classes, dropUnknownClasses: o.dropUnknownClasses };

  // Model: fresh, or from a checkpoint (whose categories and resize then apply).
  let det: Detector;
  let desc: DetectorDescription;
  if (o.from) {
    ({ det, desc } = loadDetector(o.from));
    if (desc.refocus) throw new Error(`--from ${o.from}: this is a refocused training checkpoint; start from a plain (fused or baseline) detector`);
    log(`loaded ${o.from}`);
  } else {
    desc = describeDetector(o, openDataset(o.data, { split: o.trainSplit, images: o.images, ...classArgs }).categories);
    det = createDetector(desc);
    // tfjs initialisers are unseeded: re-draw a from-scratch backbone from the seed, so that two
    // processes (and a killed-and-resumed run) start from the same weights
    if (!o.backboneWeights) {
      det.model.layers.forEach((l, i) => {
        if (l instanceof tf.LayersModel) reseedWeights(l, deriveSeed(o.seed, 1_000_003, i));
      });
    }
  }
  // named after the detector actually trained (with --from: the checkpoint's kind)
  const name = o.name ?? `bccd-${desc.kind}${o.refconv ? '-refconv' : o.from ? '-finetune' : ''}`;
  const outDir = path.resolve(o.out ?? path.join(o.runsDir, name));
  fs.mkdirSync(outDir, { recursive: true });
  const plain = det;
  if (o.refconv) {
    const refocus: RefocusSpec = { scope: o.refconvScope, mapK: o.mapK, init: o.refconvInit, seed: o.seed, ...(o.grouping !== 'official' ? { grouping: o.grouping } : {}), ...(o.frozen !== 'official' ? { frozen: o.frozen } : {}) };
    det = det.withModel(refocusDetector(det.model, refocus));
    desc = { ...desc, refocus };
    log(`refocused (${o.refconvScope}, map ${o.mapK}x${o.mapK}, init ${o.refconvInit}): trainable params ${countParams(det.model, { trainableOnly: true })}`);
  }
  log(`detector: ${countParams(det.model)} params (${countParams(det.model, { trainableOnly: true })} trainable), backbone ${desc.options.backbone.arch}`);

  const train = openDataset(o.data, { split: o.trainSplit, images: o.images, categories: desc.categories, ...classArgs });
  reportWarnings(train);
  // the test split is validated too before the first step (not after training)
  const test = openDataset(o.data, { split: o.testSplit, images: o.images, categories: desc.categories, ...classArgs });
  reportWarnings(test);
  // The clipped / dropped counts and handled problems stay with the run's outputs (stderr scrolls away).
  writeFileAtomic(path.join(outDir, 'datasets.json'), `${JSON.stringify({
    train: { source: train.source, summary: train.summary, handled: train.warnings },
    test: { source: test.source, summary: test.summary, handled: test.warnings },
  }, null, 1)}\n`);
  if (o.trainLimit) train.records = train.records.slice(0, o.trainLimit);
  if (o.testLimit) test.records = test.records.slice(0, o.testLimit);
  log(`train: ${train.records.length} images from ${train.source}`);

  const r = await trainDetector({
    det,
    description: desc,
    data: train,
    epochs: o.epochs,
    batchSize: o.batchSize,
    lr: o.lr,
    momentum: o.momentum,
    weightDecay: o.weightDecay,
    warmupSteps: o.warmupSteps,
    warmupEpochs: o.warmupEpochs,
    warmupStartFactor: o.warmupStartFactor,
    seed: o.seed,
    dir: outDir,
    resume: o.resume,
    acceptChangedOptions: o.acceptChangedOptions,
    runOptions: { description: desc, from: o.from, trainSplit: o.trainSplit },
    tag: name,
  });

  // The deployable detector: fused when refocused (same params/FLOPs as the plain one).
  let final = det;
  let finalDesc = desc;
  if (o.refconv) {
    final = det.withModel(fuse(det.model));
    finalDesc = { ...desc, refocus: undefined };
    log(`fused: ${countParams(final.model)} params (plain detector: ${countParams(plain.model)})`);
  }
  const finalFile = path.join(outDir, 'final.safetensors');
  const finalWeights = detectorWeights(final);
  assertFiniteWeights(finalWeights, finalFile, o.epochs);
  saveCheckpoint(finalFile, { weights: finalWeights, state: { epoch: o.epochs, step: 0, classNames: finalDesc.categories.names, model: finalDesc as unknown as Record<string, unknown> } });
  const evaluation = await evaluateDetector(final, test, finalDesc.resize);
  return { outDir, finalFile, lastFile: path.join(outDir, 'last.safetensors'), history: r.history, changedOptions: r.changedOptions, test, evaluation };
}

/** Prints the dataset's clipped/dropped counts, then its warnings (e.g. dropped degenerate boxes), to stderr. */
export function reportWarnings(ds: DetectionDataset): void {
  if (ds.summary) process.stderr.write(`${formatDatasetSummary(ds.source, ds.summary)}\n`);
  if (ds.warnings.length === 0) return;
  process.stderr.write(`${ds.source}: ${ds.warnings.length} problem(s) handled:\n${ds.warnings.map((w) => `  - ${w}`).join('\n')}\n`);
}
