export * from './backbone.js';
export * from './fpn.js';
export * from './retinanet.js';
export * from './flops.js';
