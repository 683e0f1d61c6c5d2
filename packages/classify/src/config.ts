/** Run configuration of the RefConv protocol and its defaults. */
import { defaultRunDir } from '@refconv/engine';
import type { DataFormat } from './data/open.js';
import type { RefocusSpec } from './model.js';
import type { OptimConfig } from './train.js';

/** The protocol's stages, in order. */
export const STAGES = ['pretrain', 'refocus', 'control', 'fuse', 'eval'] as const;
export type Stage = (typeof STAGES)[number];

/** Everything a run needs; CLI flags and `--config` files map onto it one to one. */
export interface RunConfig {
  /** Dataset folder (ImageFolder or Fashion-MNIST IDX) or `fashion-mnist` for the shipped copy. */
  data: string;
  format: DataFormat;
  /** Label file for a flat val folder. */
  valLabels?: string;
  /** Output folder (one subfolder per seed). */
  out: string;
  /** Backbone architecture (@refconv/backbones). */
  arch: string;
  width: number;
  /** Network input side (train crop and eval crop). */
  inputSize: number;
  /** Eval Resize shorter side (default round(inputSize / 0.875), or inputSize for Fashion-MNIST). */
  evalResize?: number;
  /** RandomResizedCrop area range. */
  scale: [number, number];
  ratio: [number, number];
  flipProb: number;
  /** Decode every image once, resized to this shorter side, and keep it in memory (small file datasets). */
  cacheResize?: number;
  /** Use only this many training images (a fixed seeded subset, the same for every seed). */
  trainLimit?: number;
  /** Use only this many validation images (fixed seeded subset). */
  valLimit?: number;
  /** Seeds of the experiment (one full protocol each). */
  seeds: number[];
  /** Stages to run (default all). */
  stages: Stage[];
  /** Start refocus/control from this baseline checkpoint instead of pretraining. */
  baseline?: string;
  pretrain: OptimConfig;
  /** Refocus and control share this schedule (the equal-epoch control). */
  finetune: OptimConfig;
  refocus: RefocusSpec;
  workers: number;
  prefetch: number;
  skipBadImages: boolean;
  resume: boolean;
  /** With `resume`: continue stages whose stored options differ (recorded in the log and report). */
  acceptChangedOptions?: boolean;
  /** Timed forward passes per model for the latency column. */
  latencyRuns: number;
}

/** Defaults: the CPU-scale Fashion-MNIST protocol of `nx run classify:train`. */
export function defaultConfig(): RunConfig {
  const optim: OptimConfig = {
    epochs: 4,
    batchSize: 64,
    lr: 0.1,
    momentum: 0.9,
    nesterov: true,
    weightDecay: 5e-4,
    decayBnBias: false,
    warmupEpochs: 0.5,
    warmupStartFactor: 0.1,
    minLr: 0,
    labelSmoothing: 0.1,
  };
  return {
    data: 'fashion-mnist',
    format: 'auto',
    out: defaultRunDir('classify', 'train'),
    arch: 'cifar_resnet20',
    width: 0.5,
    inputSize: 28,
    scale: [0.6, 1],
    ratio: [3 / 4, 4 / 3],
    flipProb: 0.5,
    trainLimit: 8000,
    valLimit: undefined,
    seeds: [0],
    stages: [...STAGES],
    pretrain: optim,
    finetune: { ...optim, epochs: 2, lr: 0.02, warmupEpochs: 0 },
    refocus: { mapK: 3, grouping: 'official', init: 'default', frozen: 'official' },
    workers: 1,
    prefetch: 3,
    skipBadImages: false,
    resume: false,
    latencyRuns: 30,
  };
}
