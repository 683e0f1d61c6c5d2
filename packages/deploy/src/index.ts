export * from './export.js';
export * from './ort.js';
export { onnx } from './onnx-proto.js';
