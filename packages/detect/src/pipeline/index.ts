export * from './loader.js';
export * from './evaluate.js';
export * from './visualize.js';
export * from './checkpoint.js';
export * from './train.js';
export * from './protocol.js';
