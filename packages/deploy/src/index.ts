export * from './export.js';
export * from './ort.js';
export * from './classifier.js';
export { onnx } from './onnx-proto.js';
