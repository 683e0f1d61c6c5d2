/**
 * @refconv/engine: training machinery shared by the classify, detect and segment pipelines.
 */
export * from './rng.js';
export * from './schedule.js';
export * from './sgd.js';
export * from './loss.js';
export * from './fs-atomic.js';
export * from './checkpoint.js';
export * from './progress.js';
export * from './metrics-log.js';
export * from './image.js';
export * from './worker-pool.js';
export * from './prefetch.js';
export * from './plot.js';
export * from './train-step.js';
export * from './reseed.js';
export * from './cli.js';
export * from './shared-datasets.js';
export * from './epoch-loop.js';
export * from './training-options.js';
export * from './dataset-errors.js';
export * from './slurm.js';
