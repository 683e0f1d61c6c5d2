/**
 * @refconv/analysis: the RefConv paper's explanatory analyses for baseline, control and RefConv
 * checkpoints side by side: kernel skeletons (weights only), channel redundancy.
 */
export * from './kernels.js';
export * from './skeleton.js';
export * from './heatmap.js';
export * from './contour.js';
export * from './redundancy.js';
export * from './data.js';
export * from './model-layers.js';
export * from './model-redundancy.js';
export * from './adversarial.js';
export * from './landscape.js';
export * from './weight-redundancy.js';
export * from './aggregate.js';
export * from './run.js';
