/** Flags of `classify:train` / `classify:experiment`, mapped onto {@link RunConfig}. */
import type { Argv } from 'yargs';
import { defaultConfig, STAGES, type RunConfig, type Stage } from '../config.js';

/** Adds every protocol option to a yargs parser (defaults from {@link defaultConfig}). */
export function protocolOptions(y: Argv, defaultSeeds: number, defaultOut = defaultConfig().out) {
  const d = defaultConfig();
  return y
    .option('data', { type: 'string', default: d.data, describe: "dataset folder (ImageFolder train/<class>/*, or the Fashion-MNIST IDX files), or 'fashion-mnist' for the shipped copy" })
    .option('format', { choices: ['auto', 'fashion-mnist', 'imagefolder'] as const, default: d.format })
    .option('val-labels', { type: 'string', describe: 'label file for a flat val/ folder (CSV ImageId,label or ILSVRC2012 ground truth)' })
    .option('out', { type: 'string', default: defaultOut, describe: 'output folder' })
    .option('arch', { type: 'string', default: d.arch, describe: 'backbone from @refconv/backbones (cifar_resnet20, resnet18, mobilenet_v2, ...)' })
    .option('width', { type: 'number', default: d.width, describe: 'width multiplier' })
    .option('input-size', { type: 'number', default: d.inputSize, describe: 'train crop / eval crop side' })
    .option('eval-resize', { type: 'number', describe: 'eval Resize shorter side (default input/0.875; = input for Fashion-MNIST)' })
    .option('scale', { type: 'number', array: true, default: d.scale, describe: 'RandomResizedCrop area range (two numbers)' })
    .option('ratio', { type: 'number', array: true, default: d.ratio, describe: 'RandomResizedCrop aspect range (two numbers)' })
    .option('flip-prob', { type: 'number', default: d.flipProb })
    .option('cache-resize', { type: 'number', describe: 'decode each image once at this shorter side and keep it in memory (small datasets)' })
    .option('train-limit', { type: 'number', default: d.trainLimit, describe: 'use a fixed subset of this many training images (0 = all)' })
    .option('val-limit', { type: 'number', describe: 'use a fixed subset of this many val images' })
    .option('seeds', { type: 'number', array: true, describe: 'explicit seeds (overrides --num-seeds)' })
    .option('num-seeds', { type: 'number', default: defaultSeeds, describe: 'run seeds 0..N-1' })
    .option('stages', { type: 'string', array: true, choices: [...STAGES], default: [...STAGES], describe: 'stages to run' })
    .option('baseline', { type: 'string', describe: 'baseline checkpoint to refocus/continue instead of pretraining' })
    .option('epochs', { type: 'number', default: d.pretrain.epochs, describe: 'pretrain epochs' })
    .option('batch-size', { type: 'number', default: d.pretrain.batchSize })
    .option('lr', { type: 'number', default: d.pretrain.lr, describe: 'pretrain peak learning rate' })
    .option('momentum', { type: 'number', default: d.pretrain.momentum })
    .option('nesterov', { type: 'boolean', default: d.pretrain.nesterov })
    .option('weight-decay', { type: 'number', default: d.pretrain.weightDecay })
    .option('decay-bn-bias', { type: 'boolean', default: d.pretrain.decayBnBias, describe: 'also decay biases and BN parameters' })
    .option('warmup-epochs', { type: 'number', default: d.pretrain.warmupEpochs, describe: 'pretrain linear warmup (per iteration)' })
    .option('warmup-start-factor', { type: 'number', default: d.pretrain.warmupStartFactor })
    .option('min-lr', { type: 'number', default: d.pretrain.minLr })
    .option('label-smoothing', { type: 'number', default: d.pretrain.labelSmoothing })
    .option('finetune-epochs', { type: 'number', default: d.finetune.epochs, describe: 'epochs of the refocus stage and of the equal-epoch control' })
    .option('finetune-lr', { type: 'number', default: d.finetune.lr, describe: 'peak lr of refocus and control' })
    .option('finetune-warmup-epochs', { type: 'number', default: d.finetune.warmupEpochs })
    .option('map-k', { type: 'number', default: d.refocus.mapK, describe: 'RefConv map size (1, 3, 5)' })
    .option('grouping', { choices: ['official', 'per-kernel', 'full'] as const, default: d.refocus.grouping })
    .option('init', { choices: ['default', 'zero'] as const, default: d.refocus.init, describe: 'RefConv transform init' })
    .option('frozen', { choices: ['official', 'transform-only'] as const, default: d.refocus.frozen, describe: 'what RefConv freezes' })
    .option('workers', { type: 'number', default: d.workers, describe: 'image-decoding worker threads (0 = main thread)' })
    .option('prefetch', { type: 'number', default: d.prefetch, describe: 'batches decoded ahead' })
    .option('skip-bad-images', { type: 'boolean', default: d.skipBadImages, describe: 'leave unreadable images out (counted in the report) instead of stopping' })
    .option('resume', { type: 'boolean', default: d.resume, describe: 'continue an interrupted run in --out' })
    .option('latency-runs', { type: 'number', default: d.latencyRuns })
    .option('backend', { choices: ['auto', 'tensorflow', 'cpu', 'wasm'] as const, default: 'auto' as const });
}

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
  const seeds = a.seeds?.length ? a.seeds : Array.from({ length: positiveInt(a.numSeeds, 'num-seeds') }, (_, i) => i);
  return {
    data: a.data,
    format: a.format,
    valLabels: a.valLabels,
    out: a.out,
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
    baseline: a.baseline,
    pretrain: {
      ...d.pretrain,
      epochs: positiveInt(a.epochs, 'epochs'),
      batchSize: positiveInt(a.batchSize, 'batch-size'),
      lr: a.lr,
      momentum: a.momentum,
      nesterov: a.nesterov,
      weightDecay: a.weightDecay,
      decayBnBias: a.decayBnBias,
      warmupEpochs: a.warmupEpochs,
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
    refocus: { mapK: a.mapK, grouping: a.grouping, init: a.init, frozen: a.frozen },
    workers: a.workers,
    prefetch: positiveInt(a.prefetch, 'prefetch'),
    skipBadImages: a.skipBadImages,
    resume: a.resume,
    latencyRuns: positiveInt(a.latencyRuns, 'latency-runs'),
  };
}
