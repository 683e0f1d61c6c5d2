export * from './backbone.js';
export * from './fpn.js';
export * from './retinanet.js';
export * from './fasterrcnn.js';
export * from './detector.js';
export * from './rpn.js';
export * from './roi-heads.js';
