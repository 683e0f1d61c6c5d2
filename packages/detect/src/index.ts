/**
 * @refconv/detect: RetinaNet detectors with RefConv backbones, COCO/VOC data and COCO evaluation.
 */
export * from './ops/index.js';
export * from './data/index.js';
export * from './models/index.js';
export * from './pipeline/index.js';
