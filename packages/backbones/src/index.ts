/**
 * @refconv/backbones: torchvision-equivalent CNN backbones for TensorFlow.js (NHWC), with
 * PyTorch state-dict import/export (plain torchvision and official RefConv checkpoints) and
 * multi-scale feature outputs.
 */
export { createModel, listModels, modelInfo, featureInfo, type FeatureInfo } from './registry.js';
export type { CreateModelOptions } from './types.js';
export {
  loadTorchWeights,
  exportTorchWeights,
  torchStateDictShapes,
  type LoadTorchWeightsOptions,
  type LoadTorchWeightsResult,
} from './torch-weights.js';
export { makeDivisible } from './models/mobilenetv2.js';
export { layerTable, tableTotals, type LayerRow } from './layer-table.js';
export * from './layers/custom.js';
