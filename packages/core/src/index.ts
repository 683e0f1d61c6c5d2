/**
 * @refconv/core: RefConv (re-parameterized refocusing convolution) for TensorFlow.js.
 * The op and layer, refocus/fuse model surgery, parameter/FLOP counts, backend selection and
 * safetensors I/O.
 */
export * from './backend.js';
export * from './refconv-op.js';
export * from './refconv-layer.js';
export * from './refocus.js';
export * from './fuse.js';
export * from './stats.js';
export * from './fast-kernels.js';
export * from './kernel-check.js';
export * from './safetensors.js';
export { compileForInference, UncompilableLayerError, type CompileOptions, type InferenceModel } from './graph/compile.js';
export { visitLayerNodesInOrder, type LayerNode } from './graph/layer-order.js';
