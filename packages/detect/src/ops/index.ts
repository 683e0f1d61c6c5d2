export * from './boxes.js';
export * from './box-coder.js';
export * from './matcher.js';
export * from './anchors.js';
export * from './losses.js';
export * from './roi-align.js';
export * from './sampler.js';
