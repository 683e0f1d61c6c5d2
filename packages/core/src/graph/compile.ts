/**
 * `compileForInference`: a tf.LayersModel handed to TensorFlow's graph runtime for inference.
 *
 * Eager tfjs runs a network op by op from JavaScript: every layer is a round trip, batch norm in
 * inference mode is TF's `FusedBatchNorm` kernel (87 % of a MobileNetV2 batch on one AVX-512
 * host), conv, bias and activation are three kernels and three full passes over memory. Here the
 * model is first put in its deployment form (`fuse`: RefConv layers become plain convs, batch
 * norm folded into the conv before it, any BN left becomes a per-channel multiply-add), then
 * written as one TensorFlow GraphDef with the weights as constants and loaded as a SavedModel
 * session by the native binding. Conv + bias + activation are written as TF's fused conv ops
 * (graph-def.ts: the binding's sessions do not run Grappler's remapper, which would do it in
 * TensorFlow's own graph runs), and the whole batch runs in C++.
 *
 * Correctness on this host is checked, not assumed: graph kernels (fused convs) are not the
 * kernels the kernel self-check verified, so every compiled model is run once on a seeded random
 * batch next to the eager model and used only if the outputs agree (relative error <= 1e-4);
 * otherwise the eager model is used with a warning (or, with `onMismatch: 'throw'`, an error).
 * The kernel self-check's correctness routes are honoured: where this host's 1x1 conv kernel
 * failed, 1x1 convs are emitted as MatMul.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { nativePackageInUse } from '../backend.js';
import { fuse } from '../fuse.js';
import { activeKernelRoutes } from '../fast-kernels.js';
import { batchNormScaleShift } from '../kernels/batch-norm.js';
import { visitLayerNodesInOrder, type LayerNode } from './layer-order.js';
import { DT_FLOAT, DT_INT32, fuseConvBiasActivation, GraphBuilder, writeSavedModel, type Attr, type NodeSpec } from './graph-def.js';

/** A layer the graph compiler cannot express, named. */
export class UncompilableLayerError extends Error {
  constructor(readonly layerName: string, readonly className: string, detail: string) {
    super(`compileForInference: layer '${layerName}' (${className}): ${detail}`);
    this.name = 'UncompilableLayerError';
  }
}

type Sym = tf.SymbolicTensor;
type TfNode = LayerNode;

const T: Record<string, Attr> = { T: { type: DT_FLOAT } };

function pair(v: unknown): [number, number] {
  if (typeof v === 'number') return [v, v];
  const a = v as number[];
  return [a[0]!, a[1] ?? a[0]!];
}

/** Element-wise activation (as tfjs names them) applied to tensor `x`. */
function activation(g: GraphBuilder, name: string, act: string, x: string, unsupported: (d: string) => never): string {
  switch (act) {
    case 'linear':
      return x;
    case 'relu':
      return g.op('Relu', name, [x], T);
    case 'relu6':
      return g.op('Relu6', name, [x], T);
    case 'sigmoid':
      return g.op('Sigmoid', name, [x], T);
    case 'tanh':
      return g.op('Tanh', name, [x], T);
    case 'elu':
      return g.op('Elu', name, [x], T);
    case 'selu':
      return g.op('Selu', name, [x], T);
    case 'softplus':
      return g.op('Softplus', name, [x], T);
    case 'softmax':
      return g.op('Softmax', name, [x], T);
    case 'swish':
      return g.op('Mul', name, [x, g.op('Sigmoid', `${name}/sigmoid`, [x], T)], T);
    default:
      return unsupported(`activation '${act}' has no graph mapping`);
  }
}

/** `x * relu6(x + 3) / 6` (torchvision's Hardswish) and `relu6(x + 3) / 6` (Hardsigmoid). */
function hardSigmoid(g: GraphBuilder, name: string, x: string): string {
  const shifted = g.op('AddV2', `${name}/add3`, [x, g.floats(`${name}/three`, [], [3])], T);
  return g.op('Mul', name, [g.op('Relu6', `${name}/relu6`, [shifted], T), g.floats(`${name}/sixth`, [], [1 / 6])], T);
}

/** Translates a (fused) LayersModel into graph nodes; returns the output tensor names. */
function buildGraph(model: tf.LayersModel, g: GraphBuilder, inputName: string, pointwiseMatMul: boolean): string[] {
  const names = new Map<number, string>();
  const input = model.inputs[0]!;
  names.set(input.id, inputName);
  const avail = new Set<number>([input.id]);
  const routes = activeKernelRoutes();

  const nameOf = (layer: tf.layers.Layer, t: Sym): string => {
    const n = names.get(t.id);
    if (n === undefined) throw new Error(`compileForInference: input of layer '${layer.name}' not computed yet (graph order)`);
    return n;
  };

  /** Dimensions [begin, begin + size) of tensor `src`'s runtime shape, as an int32 vector. */
  const shapeDims = (nm: string, src: string, begin: number, size: number): string =>
    g.op('Slice', `${nm}/dims`, [g.op('Shape', `${nm}/shape`, [src], { ...T, out_type: { type: DT_INT32 } }), g.ints(`${nm}/dims_begin`, [1], [begin]), g.ints(`${nm}/dims_size`, [1], [size])], { T: { type: DT_INT32 }, Index: { type: DT_INT32 } });

  /** A Conv2D / Dense layer's bias and activation after its product `y`. */
  const biasAndActivation = (nm: string, y: string, bias: tf.Tensor | undefined, act: string, unsupported: (d: string) => never): string => {
    const biased = bias ? g.op('BiasAdd', `${nm}/bias_add`, [y, g.floats(`${nm}/bias`, bias.shape, bias.dataSync() as Float32Array)], { ...T, data_format: { s: 'NHWC' } }) : y;
    return activation(g, `${nm}/${act}`, act, biased, unsupported);
  };

  /** y = x . W for a 1x1 conv, through MatMul (the kernel self-check's route where the 1x1 conv kernel failed). */
  const pointwiseAsMatMul = (nm: string, x: string, kernel: tf.Tensor, strides: [number, number]): string => {
    const [, , cin, cout] = kernel.shape as number[];
    const xs = strides[0] === 1 && strides[1] === 1 ? x
      : g.op('StridedSlice', `${nm}/sample`, [x, g.ints(`${nm}/begin`, [4], [0, 0, 0, 0]), g.ints(`${nm}/end`, [4], [0, 0, 0, 0]), g.ints(`${nm}/stride`, [4], [1, strides[0], strides[1], 1])],
        { ...T, Index: { type: DT_INT32 }, begin_mask: { i: 15 }, end_mask: { i: 15 }, ellipsis_mask: { i: 0 }, new_axis_mask: { i: 0 }, shrink_axis_mask: { i: 0 } });
    const flat = g.op('Reshape', `${nm}/flat`, [xs, g.ints(`${nm}/flat_shape`, [2], [-1, cin!])], { ...T, Tshape: { type: DT_INT32 } });
    const w = g.floats(`${nm}/kernel`, [cin!, cout!], kernel.dataSync() as Float32Array);
    const y = g.op('MatMul', `${nm}/matmul`, [flat, w], { ...T, transpose_a: { b: false }, transpose_b: { b: false } });
    const shape = g.op('ConcatV2', `${nm}/out_shape`, [shapeDims(`${nm}/nhw`, xs, 0, 3), g.ints(`${nm}/cout`, [1], [cout!]), g.ints(`${nm}/axis`, [], [0])], { N: { i: 2 }, T: { type: DT_INT32 }, Tidx: { type: DT_INT32 } });
    return g.op('Reshape', `${nm}/matmul_nhwc`, [y, shape], { ...T, Tshape: { type: DT_INT32 } });
  };

  const emitNode = (layer: tf.layers.Layer, node: TfNode): void => {
    const cls = layer.getClassName();
    const nm = layer.name;
    const ins = node.inputTensors as Sym[];
    const unsupported = (detail: string): never => {
      throw new UncompilableLayerError(nm, cls, detail);
    };
    if (layer instanceof tf.LayersModel) {
      // A nested model (a backbone inside a detector or segmenter) is inlined.
      const selfNodes = layer.inboundNodes.filter((n) => n.inputTensors.every((t, i) => t === layer.inputs[i])).length;
      if (layer.inboundNodes.length - selfNodes !== 1) unsupported(`nested model applied ${layer.inboundNodes.length - selfNodes} times; exactly once is supported`);
      layer.inputs.forEach((inner, i) => {
        names.set(inner.id, nameOf(layer, ins[i]!));
        avail.add(inner.id);
      });
      emitContainer(layer);
      node.outputTensors.forEach((t, i) => names.set(t.id, nameOf(layer, layer.outputs[i]!)));
      return;
    }
    if (node.outputTensors.length !== 1) unsupported('has several outputs');
    const out = node.outputTensors[0] as Sym;
    const cfg = layer.getConfig() as Record<string, unknown>;
    const x = ins.length > 0 ? nameOf(layer, ins[0]!) : '';
    const channelsLast = (): void => {
      if (cfg.dataFormat !== undefined && cfg.dataFormat !== 'channelsLast') unsupported(`dataFormat '${String(cfg.dataFormat)}' (channelsLast only)`);
    };
    const weights = (): tf.Tensor[] => layer.getWeights();
    let y: string;
    switch (cls) {
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        channelsLast();
        const [kernel, bias] = weights();
        const strides = pair(cfg.strides ?? 1);
        const dil = pair(cfg.dilationRate ?? 1);
        const padding = String(cfg.padding ?? 'valid').toUpperCase();
        if (padding !== 'SAME' && padding !== 'VALID') unsupported(`padding '${String(cfg.padding)}'`);
        const pointwise = cls === 'Conv2D' && kernel!.shape[0] === 1 && kernel!.shape[1] === 1 && dil[0] === 1 && dil[1] === 1;
        if (pointwise && (pointwiseMatMul || routes['conv1x1.forward'] === 'matmul')) {
          y = pointwiseAsMatMul(nm, x, kernel!, strides);
        } else {
          const w = g.floats(`${nm}/kernel`, kernel!.shape, kernel!.dataSync() as Float32Array);
          y = g.op(cls === 'Conv2D' ? 'Conv2D' : 'DepthwiseConv2dNative', `${nm}/conv`, [x, w], {
            ...T,
            strides: { ints: [1, strides[0], strides[1], 1] },
            padding: { s: padding },
            data_format: { s: 'NHWC' },
            dilations: { ints: [1, dil[0], dil[1], 1] },
          });
        }
        y = biasAndActivation(nm, y, bias, String(cfg.activation ?? 'linear'), unsupported);
        break;
      }
      case 'Dense': {
        if (ins[0]!.shape.length !== 2) unsupported(`applied to a rank-${ins[0]!.shape.length} tensor (2-D only)`);
        const [kernel, bias] = weights();
        y = g.op('MatMul', `${nm}/matmul`, [x, g.floats(`${nm}/kernel`, kernel!.shape, kernel!.dataSync() as Float32Array)], { ...T, transpose_a: { b: false }, transpose_b: { b: false } });
        y = biasAndActivation(nm, y, bias, String(cfg.activation ?? 'linear'), unsupported);
        break;
      }
      case 'BatchNormalization': {
        // Left unfolded (not after a conv): inference-mode BN as the per-channel affine map it is.
        const axis = cfg.axis as number;
        if (axis !== -1 && axis !== ins[0]!.shape.length - 1) unsupported(`axis ${axis} (last axis only)`);
        const bn = layer as unknown as { gamma?: tf.LayerVariable; beta?: tf.LayerVariable; movingMean: tf.LayerVariable; movingVariance: tf.LayerVariable; epsilon: number };
        const [scale, shift] = tf.tidy(() => batchNormScaleShift(bn.movingMean.read(), bn.movingVariance.read(), bn.epsilon, bn.gamma?.read(), bn.beta?.read())
          .map((t) => t.dataSync() as Float32Array));
        const scaled = g.op('Mul', `${nm}/scale`, [x, g.floats(`${nm}/gamma_inv_std`, [scale.length], scale)], T);
        y = g.op('AddV2', nm, [scaled, g.floats(`${nm}/shift`, [shift.length], shift)], T);
        break;
      }
      case 'ReLU': {
        if ((cfg.negativeSlope as number | undefined) || (cfg.threshold as number | undefined)) unsupported('negativeSlope / threshold are not supported');
        const maxValue = cfg.maxValue as number | null | undefined;
        if (maxValue == null) y = g.op('Relu', nm, [x], T);
        else if (maxValue === 6) y = g.op('Relu6', nm, [x], T);
        else y = g.op('Minimum', nm, [g.op('Relu', `${nm}/relu`, [x], T), g.floats(`${nm}/max`, [], [maxValue])], T);
        break;
      }
      case 'Activation':
        y = activation(g, nm, String(cfg.activation), x, unsupported);
        if (y === x) y = g.op('Identity', nm, [x], T);
        break;
      case 'HardSwish': {
        // (1/6 * x) * relu6(3 + x): the operand order fuseConvBiasActivation (graph-def.ts) matches
        // to fuse a conv + bias + this into one oneDNN kernel (_FusedConv2D with _FusedHardSwish)
        const relu6 = g.op('Relu6', `${nm}/relu6`, [g.op('AddV2', `${nm}/add3`, [g.floats(`${nm}/three`, [], [3]), x], T)], T);
        y = g.op('Mul', nm, [g.op('Mul', `${nm}/mul_sixth`, [g.floats(`${nm}/sixth`, [], [1 / 6]), x], T), relu6], T);
        break;
      }
      case 'HardSigmoid':
        y = hardSigmoid(g, nm, x);
        break;
      case 'Add':
      case 'Multiply': {
        y = x;
        for (let i = 1; i < ins.length; i++) y = g.op(cls === 'Add' ? 'AddV2' : 'Mul', nm, [y, nameOf(layer, ins[i]!)], T);
        break;
      }
      case 'Concatenate': {
        const rank = ins[0]!.shape.length;
        const axis = (cfg.axis as number) < 0 ? (cfg.axis as number) + rank : (cfg.axis as number);
        y = g.op('ConcatV2', nm, [...ins.map((t) => nameOf(layer, t)), g.ints(`${nm}/axis`, [], [axis])], { N: { i: ins.length }, ...T, Tidx: { type: DT_INT32 } });
        break;
      }
      case 'ZeroPadding2D': {
        channelsLast();
        const [[t, b], [l, r]] = cfg.padding as [[number, number], [number, number]];
        y = g.op('Pad', nm, [x, g.ints(`${nm}/paddings`, [4, 2], [0, 0, t, b, l, r, 0, 0])], { ...T, Tpaddings: { type: DT_INT32 } });
        break;
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        channelsLast();
        const k = pair(cfg.poolSize);
        const s = pair(cfg.strides ?? cfg.poolSize);
        // TF's average pooling with 'same' excludes the padding from the mean, as tfjs' does.
        y = g.op(cls === 'MaxPooling2D' ? 'MaxPool' : 'AvgPool', nm, [x], {
          ...T, ksize: { ints: [1, k[0], k[1], 1] }, strides: { ints: [1, s[0], s[1], 1] }, padding: { s: String(cfg.padding ?? 'valid').toUpperCase() }, data_format: { s: 'NHWC' },
        });
        break;
      }
      case 'GlobalAveragePooling2D':
      case 'GlobalAvgPoolKeepDims':
        channelsLast();
        y = g.op('Mean', nm, [x, g.ints(`${nm}/axes`, [2], [1, 2])], { ...T, Tidx: { type: DT_INT32 }, keep_dims: { b: cls === 'GlobalAvgPoolKeepDims' || cfg.keepDims === true } });
        break;
      case 'GlobalMaxPooling2D':
        channelsLast();
        y = g.op('Max', nm, [x, g.ints(`${nm}/axes`, [2], [1, 2])], { ...T, Tidx: { type: DT_INT32 }, keep_dims: { b: cfg.keepDims === true } });
        break;
      case 'Reshape':
        y = g.op('Reshape', nm, [x, g.ints(`${nm}/shape`, [1 + (cfg.targetShape as number[]).length], [-1, ...(cfg.targetShape as number[])])], { ...T, Tshape: { type: DT_INT32 } });
        break;
      case 'Flatten': {
        const rest = ins[0]!.shape.slice(1);
        if (rest.some((d) => d == null)) unsupported('flattening a tensor of unknown spatial size');
        y = g.op('Reshape', nm, [x, g.ints(`${nm}/shape`, [2], [-1, (rest as number[]).reduce((a, b) => a * b, 1)])], { ...T, Tshape: { type: DT_INT32 } });
        break;
      }
      case 'Dropout':
      case 'SpatialDropout2D':
      case 'GaussianNoise':
      case 'GaussianDropout':
        y = g.op('Identity', nm, [x], T); // identity at inference
        break;
      case 'ChannelShuffle': {
        const groups = cfg.groups as number;
        const c = ins[0]!.shape[3] as number;
        const [h, w] = [ins[0]!.shape[1], ins[0]!.shape[2]];
        if (h == null || w == null) unsupported('channel shuffle of a tensor of unknown spatial size');
        const split = g.op('Reshape', `${nm}/split`, [x, g.ints(`${nm}/shape5`, [5], [-1, h!, w!, groups, c / groups])], { ...T, Tshape: { type: DT_INT32 } });
        const tr = g.op('Transpose', `${nm}/transpose`, [split, g.ints(`${nm}/perm`, [5], [0, 1, 2, 4, 3])], { ...T, Tperm: { type: DT_INT32 } });
        y = g.op('Reshape', nm, [tr, g.ints(`${nm}/shape4`, [4], [-1, h!, w!, c])], { ...T, Tshape: { type: DT_INT32 } });
        break;
      }
      case 'ChannelSlice': {
        const rank = ins[0]!.shape.length;
        const begin = Array.from({ length: rank }, (_, i) => (i === rank - 1 ? (cfg.start as number) : 0));
        const size = Array.from({ length: rank }, (_, i) => (i === rank - 1 ? (cfg.size as number) : -1));
        y = g.op('Slice', nm, [x, g.ints(`${nm}/begin`, [rank], begin), g.ints(`${nm}/size`, [rank], size)], { ...T, Index: { type: DT_INT32 } });
        break;
      }
      case 'ChannelZeroPad': {
        const rank = ins[0]!.shape.length;
        const pads = Array.from({ length: rank }, (_, i) => (i === rank - 1 ? [cfg.before as number, cfg.after as number] : [0, 0])).flat();
        y = g.op('Pad', nm, [x, g.ints(`${nm}/paddings`, [rank, 2], pads)], { ...T, Tpaddings: { type: DT_INT32 } });
        break;
      }
      case 'SpaceToBatch': {
        const d = cfg.block as number;
        const [[t, b], [l, r]] = cfg.paddings as [[number, number], [number, number]];
        y = g.op('SpaceToBatchND', nm, [x, g.ints(`${nm}/block`, [2], [d, d]), g.ints(`${nm}/paddings`, [2, 2], [t, b, l, r])], { ...T, Tblock_shape: { type: DT_INT32 }, Tpaddings: { type: DT_INT32 } });
        break;
      }
      case 'BatchToSpace': {
        const d = cfg.block as number;
        const [[t, b], [l, r]] = cfg.crops as [[number, number], [number, number]];
        y = g.op('BatchToSpaceND', nm, [x, g.ints(`${nm}/block`, [2], [d, d]), g.ints(`${nm}/crops`, [2, 2], [t, b, l, r])], { ...T, Tblock_shape: { type: DT_INT32 }, Tcrops: { type: DT_INT32 } });
        break;
      }
      case 'UpSampling2D': {
        channelsLast();
        const [sh, sw] = pair(cfg.size ?? [2, 2]);
        const interp = String(cfg.interpolation ?? 'nearest');
        if (interp !== 'nearest' && interp !== 'bilinear') unsupported(`interpolation '${interp}'`);
        const size = g.op('Mul', `${nm}/size`, [shapeDims(`${nm}/hw`, x, 1, 2), g.ints(`${nm}/factor`, [2], [sh, sw])], { T: { type: DT_INT32 } });
        // tfjs' UpSampling2D: alignCorners false, halfPixelCenters false
        y = g.op(interp === 'nearest' ? 'ResizeNearestNeighbor' : 'ResizeBilinear', nm, [x, size], { ...T, align_corners: { b: false }, half_pixel_centers: { b: false } });
        break;
      }
      case 'ResizeBilinearLike': {
        // @refconv/segment: bilinear resize of inputs[0] to inputs[1]'s H, W with half-pixel centres
        y = g.op('ResizeBilinear', nm, [x, shapeDims(`${nm}/hw`, nameOf(layer, ins[1]!), 1, 2)], { ...T, align_corners: { b: false }, half_pixel_centers: { b: true } });
        break;
      }
      default:
        if (cls === 'RefConv2D') unsupported('internal error: RefConv layers should have been fused');
        unsupported('no TensorFlow graph mapping for this layer kind');
    }
    names.set(out.id, y!);
  };

  const emitContainer = (container: tf.LayersModel): void => visitLayerNodesInOrder(container, avail, emitNode, 'compileForInference');
  emitContainer(model);
  return model.outputs.map((o) => names.get(o.id)!);
}

/** Options of {@link compileForInference}. */
export interface CompileOptions {
  /**
   * What to do when the compiled graph's outputs differ from the eager model's on this host by
   * more than `tolerance`: `'eager'` (default) warns and runs the eager (fused, BN-folded) model,
   * `'throw'` throws.
   */
  onMismatch?: 'eager' | 'throw';
  /** Largest accepted relative error (max |graph - eager| / max |eager|, per output). Default 1e-4. */
  tolerance?: number;
  /** Batch size of the verification run (seeded normal inputs). Default 2. */
  verifyBatch?: number;
  /**
   * Also build a graph for batch-1 calls with every 1x1 conv as a MatMul, time both graphs at
   * batch 1 on this host and use the faster one for batch-1 inputs. At batch 1 on small maps
   * oneDNN's 1x1 conv primitives cost more than the product they compute (MobileNetV3-Large at
   * 64 px: 5.4 against 3.5 ms on one AVX-512 host); at larger batches the conv graph is faster.
   * Doubles the compile work; for latency-bound uses (single images). Default false.
   */
  batchOneVariant?: boolean;
}

/** A model ready for inference: call {@link InferenceModel.predict} as `model.predict`. */
export interface InferenceModel {
  /** `graph`: TensorFlow's graph runtime; `eager`: the fused model op by op (fallback). */
  readonly runtime: 'graph' | 'eager';
  /** The largest relative error of the verification run (graph vs eager), or the reason for the fallback. */
  readonly verification: string;
  /** Outputs for a batch, as the source model's `predict` returns them (a tensor, or a list for several outputs). */
  predict(x: tf.Tensor): tf.Tensor | tf.Tensor[];
  /** Frees the TensorFlow session and the fused model. */
  dispose(): void;
}

interface SavedModelHandle {
  predict(x: tf.Tensor[] | tf.Tensor): tf.Tensor | tf.Tensor[];
  dispose(): void;
}

function relErr(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => {
    const diff = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!;
    const scale = tf.max(tf.abs(b)).dataSync()[0]!;
    return diff / Math.max(scale, 1e-12);
  });
}

function asList(y: tf.Tensor | tf.Tensor[]): tf.Tensor[] {
  return Array.isArray(y) ? y : [y];
}

function eagerModel(fused: tf.LayersModel, runtime: 'eager', verification: string, owned: boolean): InferenceModel {
  return {
    runtime,
    verification,
    predict: (x) => fused.predict(x) as tf.Tensor | tf.Tensor[],
    dispose: () => {
      if (owned) fused.dispose();
    },
  };
}

/**
 * Compiles `model` (plain, refocused or fused; trained weights as they are now) for inference:
 * `fuse(model, { foldBatchNorm: true })`, then one TensorFlow graph run by the native backend's
 * graph runtime, verified against the eager fused model on this host. Later weight changes of
 * `model` are not seen: compile again after training.
 *
 * Needs the native `tensorflow` backend; on other backends (and for models with several inputs)
 * it returns the eager fused model. Layers without a graph mapping throw
 * {@link UncompilableLayerError} naming the layer.
 */
export async function compileForInference(model: tf.LayersModel, options: CompileOptions = {}): Promise<InferenceModel> {
  const tolerance = options.tolerance ?? 1e-4;
  const fused = fuse(model, { foldBatchNorm: true });
  const nativePkg = nativePackageInUse();
  if (!nativePkg || tf.getBackend() !== 'tensorflow') return eagerModel(fused, 'eager', `backend '${tf.getBackend()}' has no graph runtime`, true);
  if (fused.inputs.length !== 1) return eagerModel(fused, 'eager', `${fused.inputs.length} inputs (one supported)`, true);
  const input = fused.inputs[0]!;
  const outputKeys = fused.outputs.map((_, i) => `output_${String(i).padStart(3, '0')}`);
  const device = nativePkg.endsWith('-gpu') ? '' : '/device:CPU:0';

  /** The graph's nodes (1x1 convs as MatMul or not) and its input's name. */
  const graphNodes = (pointwiseMatMul: boolean): { nodes: NodeSpec[]; inputName: string } => {
    const g = new GraphBuilder();
    const inputName = g.op('Placeholder', 'input', [], { dtype: { type: DT_FLOAT }, shape: { shape: input.shape.map((d) => d ?? null) } });
    buildGraph(fused, g, inputName, pointwiseMatMul).forEach((o, i) => g.op('Identity', outputKeys[i]!, [o], T));
    return { nodes: g.nodes, inputName };
  };

  /** Writes the nodes as a SavedModel, loads it in the native binding, deletes the files. */
  const load = async (nodes: NodeSpec[], inputName: string): Promise<SavedModelHandle> => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'refconv-graph-'));
    try {
      writeSavedModel(nativePkg, dir, nodes, [{ key: 'input', tensorName: `${inputName}:0`, shape: input.shape }],
        fused.outputs.map((o, i) => ({ key: outputKeys[i]!, tensorName: `${outputKeys[i]}:0`, shape: o.shape })), device);
      const native = (await import(nativePkg)) as { node: { loadSavedModel(dir: string, tags: string[], sig: string): Promise<SavedModelHandle & { outputNodeNames: Record<string, string> }> } };
      const loaded = await native.node.loadSavedModel(dir, ['serve'], 'serving_default');
      const order = Object.keys(loaded.outputNodeNames).map((k) => outputKeys.indexOf(k));
      return {
        predict: (x) => {
          const ys = asList(loaded.predict([x as tf.Tensor]));
          const sorted: tf.Tensor[] = [];
          order.forEach((slot, i) => { sorted[slot] = ys[i]!; });
          return sorted;
        },
        dispose: () => loaded.dispose(),
      };
    } finally {
      // The session holds the graph (weights are constants in it): the files are not needed after loading.
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  // Verified on this host: graph kernels (fused convs) are not the ones the kernel self-check ran.
  const shape = [options.verifyBatch ?? 2, ...input.shape.slice(1).map((d) => d ?? 32)];
  const x = tf.randomNormal(shape, 0, 1, 'float32', 1234);
  const want = asList(fused.predict(x) as tf.Tensor | tf.Tensor[]);
  /**
   * The first of: conv + bias + activation fused into single kernels (depthwise convs and hard
   * swish run fused only on oneDNN's kernels), plain conv + bias + ReLU fused, separate ops; that
   * loads and reproduces the eager model.
   */
  const verifiedGraph = async (pointwiseMatMul: boolean): Promise<{ session?: SavedModelHandle; worst: number; problems: string[] }> => {
    const { nodes, inputName } = graphNodes(pointwiseMatMul);
    const problems: string[] = [];
    let worst = NaN;
    for (const [variant, level] of [['fused convs', 'all'], ['fused conv + ReLU', 'conv-relu'], ['separate ops', 'none']] as const) {
      let candidate: SavedModelHandle | undefined;
      try {
        candidate = await load(fuseConvBiasActivation(nodes, level), inputName);
        const got = asList(candidate.predict(x));
        worst = Math.max(...want.map((w, i) => relErr(got[i]!, w)));
        tf.dispose(got);
      } catch (e) {
        problems.push(`${variant}: ${(e as Error).message.split('\n')[0]}`);
        candidate?.dispose();
        continue;
      }
      if (worst <= tolerance) return { session: candidate, worst, problems };
      problems.push(`${variant}: relative error ${worst.toExponential(2)} > ${tolerance}`);
      candidate.dispose();
    }
    return { worst, problems };
  };
  const main = await verifiedGraph(false);
  const batchOne = main.session && options.batchOneVariant && hasPointwiseConv(fused) ? await verifiedGraph(true) : undefined;
  tf.dispose([x, ...want]);
  const { session, worst, problems } = main;
  if (!session) {
    const msg = `compileForInference: model '${model.name}': TensorFlow's graph runtime does not reproduce the eager model on this CPU (${problems.join('; ')})`;
    if (options.onMismatch === 'throw') {
      fused.dispose();
      throw new Error(msg);
    }
    process.emitWarning(`${msg}; using the eager model`, { code: 'REFCONV_GRAPH_MISMATCH' });
    return eagerModel(fused, 'eager', msg, true);
  }
  // The batch-1 graph is used only where it is faster at batch 1 on this host (>= 5 %).
  let single1: SavedModelHandle | undefined;
  let batchOneNote = '';
  if (batchOne?.session) {
    const [convMs, matmulMs] = timeBatchOne([session, batchOne.session], input.shape);
    const faster = matmulMs < 0.95 * convMs;
    batchOneNote = `; batch 1: ${faster ? '1x1 convs as MatMul' : 'the same graph'} (${matmulMs.toFixed(2)} ms with MatMul, ${convMs.toFixed(2)} ms with convs)`;
    if (faster) single1 = batchOne.session;
    else batchOne.session.dispose();
  } else if (batchOne) batchOneNote = `; batch 1: the same graph (the MatMul variant failed: ${batchOne.problems.join('; ')})`;
  const verified = session;
  const single = fused.outputs.length === 1;
  fused.dispose();
  return {
    runtime: 'graph',
    verification: `graph vs eager max relative error ${worst.toExponential(2)}${problems.length ? ` (${problems.join('; ')})` : ''}${batchOneNote}`,
    predict: (xx) => {
      const ys = (single1 && xx.shape[0] === 1 ? single1 : verified).predict(xx) as tf.Tensor[];
      return single ? ys[0]! : ys;
    },
    dispose: () => {
      verified.dispose();
      single1?.dispose();
    },
  };
}

/** Whether a (fused) model has a 1x1 Conv2D (anything for the batch-1 MatMul variant to change). */
function hasPointwiseConv(model: tf.LayersModel): boolean {
  const walk = (m: tf.LayersModel): boolean => m.layers.some((l) => (l instanceof tf.LayersModel ? walk(l)
    : l.getClassName() === 'Conv2D' && (l.getWeights()[0]?.shape.slice(0, 2).every((k) => k === 1) ?? false)));
  return walk(model);
}

/** Median ms of a batch-1 call of each session (one warm-up, then 7 rounds alternating them). */
function timeBatchOne(sessions: SavedModelHandle[], inputShape: (number | null)[]): number[] {
  const x = tf.randomNormal([1, ...inputShape.slice(1).map((d) => d ?? 32)], 0, 1, 'float32', 7);
  const times: number[][] = sessions.map(() => []);
  for (let round = 0; round < 8; round++) {
    sessions.forEach((sess, i) => {
      const t0 = performance.now();
      tf.tidy(() => { asList(sess.predict(x))[0]!.dataSync(); });
      if (round > 0) times[i]!.push(performance.now() - t0);
    });
  }
  x.dispose();
  return times.map((t) => [...t].sort((a, b) => a - b)[t.length >> 1]!);
}
