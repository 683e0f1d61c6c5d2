export * from './export.js';
export * from './ort.js';
export * from './classifier.js';
export { classifierPreprocessing, parseMetadataProps, preprocessRgba, resizeCropGeometry, softmaxTopK, type ClassifierPreprocessing, type TopClass } from './metadata.js';
export { onnx } from './onnx-proto.js';
export * from './networks.js';
