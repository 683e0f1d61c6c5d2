export * from './dataset.js';
export * from './validation.js';
export * from './voc.js';
export * from './coco.js';
export * from './open.js';
export * from './transforms.js';
