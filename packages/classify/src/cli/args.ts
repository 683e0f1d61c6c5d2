/** Flags of `classify:train` / `classify:experiment`, mapped onto {@link RunConfig}. */
import type { Argv } from 'yargs';
import { resolvePaths, trainingOptions } from '@refconv/engine';
import { defaultConfig, STAGES, type RunConfig, type Stage } from '../config.js';

/** Old classify spellings, kept for one version (a warning names the new flag). */
export const DEPRECATED_ALIASES: Record<string, string> = { init: 'refconv-init', baseline: 'from' };

/** Adds every protocol option to a yargs parser (defaults from {@link defaultConfig}). */
export function protocolOptions(y: Argv, defaultSeeds: number, defaultOut = defaultConfig().out) {
  const d = defaultConfig();
  return trainingOptions(y, {
    epochs: d.pretrain.epochs,
    batchSize: d.pretrain.batchSize,
    lr: d.pretrain.lr,
    momentum: d.pretrain.momentum,
    weightDecay: d.pretrain.weightDecay,
    warmupEpochs: d.pretrain.warmupEpochs,
    warmupStartFactor: d.pretrain.warmupStartFactor,
    seed: 0,
    out: defaultOut,
    trainLimit: d.trainLimit,
    valLimit: d.valLimit,
    ...d.refocus,
    mapK: d.refocus.mapK as 1 | 3 | 5,
    refconvInit: d.refocus.init,
  })
    .option('data', { type: 'string', default: d.data, describe: "dataset folder (ImageFolder train/<class>/*, or the Fashion-MNIST IDX files), or 'fashion-mnist' for the shipped copy" })
    .option('format', { choices: ['auto', 'fashion-mnist', 'imagefolder'] as const, default: d.format })
    .option('val-labels', { type: 'string', describe: 'label file for a flat val/ folder (CSV ImageId,label or ILSVRC2012 ground truth)' })
    .option('arch', { type: 'string', default: d.arch, describe: 'backbone from @refconv/backbones (cifar_resnet20, resnet18, mobilenet_v2, ...)' })
    .option('width', { type: 'number', default: d.width, describe: 'width multiplier' })
    .option('input-size', { type: 'number', default: d.inputSize, describe: 'train crop / eval crop side' })
    .option('eval-resize', { type: 'number', describe: 'eval Resize shorter side (default input/0.875; = input for Fashion-MNIST)' })
    .option('scale', { type: 'number', array: true, default: d.scale, describe: 'RandomResizedCrop area range (two numbers)' })
    .option('ratio', { type: 'number', array: true, default: d.ratio, describe: 'RandomResizedCrop aspect range (two numbers)' })
    .option('flip-prob', { type: 'number', default: d.flipProb })
    .option('cache-resize', { type: 'number', describe: 'decode each image once at this shorter side and keep it in memory (small datasets)' })
    .option('seeds', { type: 'number', array: true, describe: 'explicit seeds (overrides --num-seeds)' })
    .option('num-seeds', { type: 'number', default: defaultSeeds, describe: 'run N seeds: --seed .. --seed+N-1' })
    .option('stages', { type: 'string', array: true, choices: [...STAGES], default: [...STAGES], describe: 'stages to run' })
    .option('nesterov', { type: 'boolean', default: d.pretrain.nesterov })
    .option('decay-bn-bias', { type: 'boolean', default: d.pretrain.decayBnBias, describe: 'also decay biases and BN parameters' })
    .option('min-lr', { type: 'number', default: d.pretrain.minLr })
    .option('label-smoothing', { type: 'number', default: d.pretrain.labelSmoothing })
    .option('finetune-epochs', { type: 'number', default: d.finetune.epochs, describe: 'epochs of the refocus stage and of the equal-epoch control' })
    .option('finetune-lr', { type: 'number', default: d.finetune.lr, describe: 'peak lr of refocus and control' })
    .option('finetune-warmup-epochs', { type: 'number', default: d.finetune.warmupEpochs })
    .option('workers', { type: 'number', default: d.workers, describe: 'image-decoding worker threads (0 = main thread)' })
    .option('prefetch', { type: 'number', default: d.prefetch, describe: 'batches decoded ahead' })
    .option('skip-bad-images', { type: 'boolean', default: d.skipBadImages, describe: 'leave unreadable images out (counted in the report) instead of stopping' })
    .option('latency-runs', { type: 'number', default: d.latencyRuns })
    .option('backend', { choices: ['auto', 'tensorflow', 'cpu', 'wasm'] as const, default: 'auto' as const })
    // relative paths are relative to where the user ran the command (nx runs it in packages/classify)
    .middleware(resolvePaths(['data', 'val-labels', 'out', 'from'], isDataKeyword));
}

/** `--data fashion-mnist` names the shipped copy, not a folder. */
export const isDataKeyword = (v: string): boolean => v === 'fashion-mnist';

type Parsed = Awaited<ReturnType<ReturnType<typeof protocolOptions>['parseAsync']>>;

function pair(v: number[], name: string): [number, number] {
  if (v.length !== 2 || !(v[0]! <= v[1]!)) throw new Error(`--${name} needs two numbers lo hi with lo <= hi, got ${v.join(' ')}`);
  return [v[0]!, v[1]!];
}

function positiveInt(v: number, name: string): number {
  if (!(Number.isInteger(v) && v > 0)) throw new Error(`--${name} must be a positive integer, got ${v}`);
  return v;
}

/** Converts parsed flags to a RunConfig, validating values. */
export function toRunConfig(a: Parsed): RunConfig {
  const d = defaultConfig();
  if (a.refconv) throw new Error('classify: --refconv does not apply (the protocol always trains the refocused model and the equal-epoch control; choose with --stages)');
  const seeds = a.seeds?.length ? a.seeds : Array.from({ length: positiveInt(a.numSeeds, 'num-seeds') }, (_, i) => a.seed + i);
  return {
    data: a.data,
    format: a.format,
    valLabels: a.valLabels,
    out: a.out ?? defaultConfig().out,
    arch: a.arch,
    width: a.width,
    inputSize: positiveInt(a.inputSize, 'input-size'),
    evalResize: a.evalResize,
    cacheResize: a.cacheResize ? positiveInt(a.cacheResize, 'cache-resize') : undefined,
    scale: pair(a.scale, 'scale'),
    ratio: pair(a.ratio, 'ratio'),
    flipProb: a.flipProb,
    trainLimit: a.trainLimit ? positiveInt(a.trainLimit, 'train-limit') : undefined,
    valLimit: a.valLimit ? positiveInt(a.valLimit, 'val-limit') : undefined,
    seeds,
    stages: a.stages as Stage[],
    baseline: a.from,
    pretrain: {
      ...d.pretrain,
      epochs: positiveInt(a.epochs, 'epochs'),
      batchSize: positiveInt(a.batchSize, 'batch-size'),
      lr: a.lr,
      momentum: a.momentum,
      nesterov: a.nesterov,
      weightDecay: a.weightDecay,
      decayBnBias: a.decayBnBias,
      warmupEpochs: a.warmupEpochs ?? d.pretrain.warmupEpochs,
      ...(a.warmupSteps !== undefined ? { warmupSteps: a.warmupSteps } : {}),
      warmupStartFactor: a.warmupStartFactor,
      minLr: a.minLr,
      labelSmoothing: a.labelSmoothing,
    },
    finetune: {
      ...d.finetune,
      epochs: positiveInt(a.finetuneEpochs, 'finetune-epochs'),
      batchSize: positiveInt(a.batchSize, 'batch-size'),
      lr: a.finetuneLr,
      momentum: a.momentum,
      nesterov: a.nesterov,
      weightDecay: a.weightDecay,
      decayBnBias: a.decayBnBias,
      warmupEpochs: a.finetuneWarmupEpochs,
      warmupStartFactor: a.warmupStartFactor,
      minLr: a.minLr,
      labelSmoothing: a.labelSmoothing,
    },
    refocus: { mapK: a.mapK, grouping: a.grouping, init: a.refconvInit, frozen: a.frozen },
    workers: a.workers,
    prefetch: positiveInt(a.prefetch, 'prefetch'),
    skipBadImages: a.skipBadImages,
    resume: a.resume,
    acceptChangedOptions: a.acceptChangedOptions,
    latencyRuns: positiveInt(a.latencyRuns, 'latency-runs'),
  };
}
