/**
 * @refconv/classify: ImageNet-style classification with the RefConv protocol
 * (pretrain -> refocus / equal-epoch control -> fuse -> eval), its data pipeline,
 * trainer, evaluator and report.
 */
export * from './config.js';
export * from './data/dataset.js';
export * from './data/idx.js';
export * from './data/fashion-mnist.js';
export * from './data/image-folder.js';
export * from './data/open.js';
export * from './data/transforms.js';
export * from './data/loader.js';
export * from './model.js';
export * from './train.js';
export * from './evaluate.js';
export * from './latency.js';
export * from './protocol.js';
export * from './report.js';
