/**
 * Parameter and FLOP counts in the conventions PyTorch users know: parameters exclude buffers
 * (BatchNorm running statistics and the frozen RefConv basis, which the official code registers
 * as a buffer), FLOPs are multiply-accumulates of conv and dense layers (torchvision's "GFLOPS").
 */
import * as tf from '@tensorflow/tfjs';
import { RefConv2D } from './refconv-layer.js';

/** Weight names that PyTorch would hold as buffers rather than parameters. */
const BUFFER_SUFFIXES = ['/moving_mean', '/moving_variance', '/basis'];

function isBuffer(variableName: string): boolean {
  const base = variableName.replace(/_\d+$/, '');
  return BUFFER_SUFFIXES.some((s) => base.endsWith(s));
}

/** Options of {@link countParams}. */
export interface CountParamsOptions {
  /** Count only weights that currently train. Default false. */
  trainableOnly?: boolean;
  /** Also count buffers (BN running stats, RefConv bases). Default false. */
  includeBuffers?: boolean;
}

/** Number of parameters of a model, PyTorch-style (buffers excluded unless asked). */
export function countParams(model: tf.LayersModel, options: CountParamsOptions = {}): number {
  const weights = options.trainableOnly ? model.trainableWeights : model.weights;
  let n = 0;
  for (const w of weights) {
    if (!options.includeBuffers && isBuffer(w.originalName ?? w.name)) continue;
    n += w.shape.reduce((a: number, b) => a * (b as number), 1);
  }
  return n;
}

function spatialSize(shape: tf.Shape | tf.Shape[]): number {
  const s = (Array.isArray(shape[0]) ? shape[0] : shape) as tf.Shape;
  let n = 1;
  for (let i = 1; i < s.length - 1; i++) {
    if (s[i] === null) throw new Error('countFlops: the model needs a fixed input size (spatial dims are unknown)');
    n *= s[i] as number;
  }
  return n;
}

/**
 * How many images of the model's batch one image of this layer's input stands for: a conv fed by a
 * space-to-batch layer (a dilated conv computed as TensorFlow does, e.g. `@refconv/backbones`'
 * `SpaceToBatch` with a `block` size) runs on block^2 sub-images per input image.
 */
function batchExpansion(node: { inboundLayers: tf.layers.Layer[] } | undefined): number {
  const prev = node?.inboundLayers[0] as (tf.layers.Layer & { block?: unknown }) | undefined;
  if (prev && prev.getClassName().endsWith('SpaceToBatch') && typeof prev.block === 'number') return prev.block * prev.block;
  return 1;
}

/**
 * FLOPs (multiply-accumulates) of one layer for one input image, 0 for layers without a kernel.
 * A layer applied several times (a head shared across pyramid levels) counts every call.
 */
export function layerFlops(layer: tf.layers.Layer, container?: tf.LayersModel): number {
  const cls = layer.getClassName();
  if (!['Conv2D', 'DepthwiseConv2D', 'RefConv2D', 'Dense', 'Conv1D', 'SeparableConv2D'].includes(cls)) return 0;
  const kernels = layer.getWeights().filter((_w, i) => (cls === 'SeparableConv2D' ? i < 2 : i === 0));
  // Only the calls that belong to this model (a layer object may also sit in other models).
  const own = (container as unknown as { containerNodes?: Set<string> } | undefined)?.containerNodes;
  const nodes = layer.inboundNodes.filter((_n, i) => !own || own.has(`${layer.name}_ib-${i}`));
  let out = 0;
  for (const node of nodes.length ? nodes : [undefined]) {
    const os = node ? node.outputShapes : layer.outputShape;
    out += spatialSize((Array.isArray(os[0]) ? os[0] : os) as tf.Shape) * batchExpansion(node);
  }
  if (cls === 'SeparableConv2D') {
    const [dw, pw] = kernels;
    return out * (dw.size + pw.size);
  }
  // For RefConv2D the kernel that convolves is the basis-shaped W_t.
  if (layer instanceof RefConv2D) return out * layer.getBasis().size;
  return out * kernels[0].size;
}

/**
 * Multiply-accumulates of all conv / dense layers of a model for one input at the model's
 * built input size (ResNet-50 at 224x224: ~4.1e9).
 */
export function countFlops(model: tf.LayersModel): number {
  let total = 0;
  for (const layer of model.layers) {
    total += layer instanceof tf.LayersModel ? countFlops(layer) : layerFlops(layer, model);
  }
  return total;
}
