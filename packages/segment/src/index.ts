export * from './metrics.js';
export * from './data/png.js';
export * from './data/datasets.js';
export * from './data/io.js';
export * from './data/transforms.js';
