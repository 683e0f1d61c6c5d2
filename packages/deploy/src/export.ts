/**
 * ONNX export of a fused (and BN-folded) tfjs LayersModel built by `@refconv/backbones`.
 *
 * Layouts: tfjs models are NHWC (`[N, H, W, C]`), conv kernels HWIO (`[K, K, I, O]`), depthwise
 * kernels `[K, K, C, m]` (output channel `c·m + j`), Dense kernels `[in, out]`. The ONNX graph is
 * NCHW inside: Conv weights OIHW `[O, I, K, K]`, depthwise as a grouped Conv (`group = C`, weight
 * `[C·m, 1, K, K]`, the same channel order), Dense as `Gemm(x, W[in, out]) + b`. With
 * `layout: 'NCHW'` (default) the graph input is `[N, C, H, W]` and 4-D outputs are NCHW; with
 * `layout: 'NHWC'` the input is `[N, H, W, C]`, one Transpose goes to NCHW, and 4-D outputs are
 * transposed back. The batch dimension is symbolic (`batch`). 2-D outputs (logits) are `[N, K]`.
 *
 * Every layer kind the backbones use after `fuse(model, { foldBatchNorm: true })` is supported
 * (Conv2D, DepthwiseConv2D, Dense, ReLU/ReLU6, HardSwish, HardSigmoid, Add, Multiply, Concatenate,
 * ZeroPadding2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Reshape of a pooled vector,
 * ChannelShuffle, ChannelSlice, ChannelZeroPad, BatchNormalization, Dropout, Flatten), and those of the
 * detector / segmenter heads: UpSampling2D (-> Resize, `asymmetric`, nearest `floor` or linear, as
 * tfjs), `@refconv/segment`'s ResizeBilinearLike (-> Resize linear `half_pixel` to the reference's
 * size) and GlobalAvgPoolKeepDims (-> GlobalAveragePool). A nested model (the backbone inside a
 * detector or segmenter) is inlined; a layer applied several times (RetinaNet's towers, the RPN head
 * on every pyramid level) becomes one node per application sharing one set of initializers. Anything
 * else throws an {@link UnsupportedLayerError} naming the layer.
 */
import * as tf from '@tensorflow/tfjs';
import { visitLayerNodesInOrder } from '@refconv/core';
import { onnx, DataType, AttrType } from './onnx-proto.js';
import type { OnnxNs } from './onnx-proto.js';
import { META_KEYS, parseMetadataProps, type DeployMetadata, type ModelMetadata } from './metadata.js';

export { META_KEYS, type DeployMetadata, type ModelMetadata } from './metadata.js';

/** The ONNX opset the exporter targets (default domain). */
export const OPSET = 17;
/** The ONNX IR version written (that of the onnx-proto schema; ONNX 1.12+, opset 17). */
export const IR_VERSION = 8;


/** Options of {@link exportOnnx}. */
export interface ExportOnnxOptions {
  /** Layout of the graph's input (and 4-D outputs): `'NCHW'` (default, as PyTorch) or `'NHWC'` (as tfjs). */
  layout?: 'NCHW' | 'NHWC';
  /** Name of the graph input; default `'input'`. */
  inputName?: string;
  /** Names of the graph outputs, one per model output; default `'logits'` for one 2-D output, else the tfjs layer names. */
  outputNames?: string[];
  /** Stored as metadata_props (`refconv.mean`, `refconv.std`, `refconv.input_size`, `refconv.class_names`, `refconv.layout`, ...). */
  metadata?: DeployMetadata;
  /** Graph name; default the model's name. */
  graphName?: string;
}

/** Thrown when a layer has no ONNX mapping (or an option of it is unsupported); names the layer. */
export class UnsupportedLayerError extends Error {
  constructor(
    readonly layerName: string,
    readonly className: string,
    detail: string,
  ) {
    super(`ONNX export: layer '${layerName}' (${className}): ${detail}`);
    this.name = 'UnsupportedLayerError';
  }
}


type Sym = tf.SymbolicTensor;

class GraphBuilder {
  readonly nodes: OnnxNs.INodeProto[] = [];
  readonly initializers: OnnxNs.ITensorProto[] = [];
  private counter = 0;
  private readonly used = new Set<string>();

  /** Names kept for the graph outputs: internal tensors never take them. */
  readonly reserved = new Set<string>();

  unique(base: string): string {
    let name = base;
    while (this.used.has(name) || this.reserved.has(name)) name = `${base}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  private readonly cache = new Map<string, string>();

  /** A layer's weight as an initializer, written once even when the layer is applied several times (shared heads). */
  layerInit(layer: tf.layers.Layer, suffix: string, dims: number[], make: () => Float32Array): string {
    const key = `${layer.id}/${suffix}`;
    let name = this.cache.get(key);
    if (name === undefined) {
      name = this.floatInit(`${layer.name}.${suffix}`, dims, make());
      this.cache.set(key, name);
    }
    return name;
  }

  floatInit(base: string, dims: number[], data: Float32Array): string {
    const name = this.unique(base);
    const bytes = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    this.initializers.push({ name, dims, dataType: DataType.FLOAT, rawData: bytes });
    return name;
  }

  int64Init(base: string, values: number[]): string {
    const name = this.unique(base);
    const arr = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push({ name, dims: [values.length], dataType: DataType.INT64, rawData: new Uint8Array(arr.buffer) });
    return name;
  }

  node(opType: string, inputs: string[], outBase: string, attrs: OnnxNs.IAttributeProto[] = [], nodeName?: string): string {
    const out = this.unique(outBase);
    this.nodes.push({ opType, input: inputs, output: [out], name: this.unique(`${nodeName ?? outBase}/${opType}`), attribute: attrs });
    return out;
  }
}

const ints = (name: string, v: number[]): OnnxNs.IAttributeProto => ({ name, type: AttrType.INTS, ints: v });
const int = (name: string, v: number): OnnxNs.IAttributeProto => ({ name, type: AttrType.INT, i: v });
const float = (name: string, v: number): OnnxNs.IAttributeProto => ({ name, type: AttrType.FLOAT, f: v });
const str = (name: string, v: string): OnnxNs.IAttributeProto => ({ name, type: AttrType.STRING, s: new TextEncoder().encode(v) });

/** Explicit [top, left, bottom, right] pads of TF's `same` padding for one conv/pool (static spatial size). */
function samePads(inHW: [number, number], k: [number, number], s: [number, number], d: [number, number]): number[] {
  const pads: number[] = [];
  const ends: number[] = [];
  for (let i = 0; i < 2; i++) {
    const eff = (k[i] - 1) * d[i] + 1;
    const out = Math.ceil(inHW[i] / s[i]);
    const total = Math.max((out - 1) * s[i] + eff - inHW[i], 0);
    pads.push(Math.floor(total / 2));
    ends.push(total - Math.floor(total / 2));
  }
  return [...pads, ...ends];
}

const pair = (v: unknown): [number, number] => (Array.isArray(v) ? [v[0] as number, (v[1] ?? v[0]) as number] : [v as number, v as number]);

/** Static H, W of a 4-D NHWC symbolic tensor, or an error naming the layer. */
function spatial(layer: tf.layers.Layer, t: Sym): [number, number] {
  const [, h, w] = t.shape;
  if (t.shape.length !== 4 || h == null || w == null) {
    throw new UnsupportedLayerError(layer.name, layer.getClassName(), `needs a static 4-D input, got shape [${t.shape.join(', ')}]`);
  }
  return [h, w];
}

/** Transposes a tfjs tensor's values on the CPU (small; weights only). */
function transposeData(t: tf.Tensor, perm: number[]): Float32Array {
  return tf.tidy(() => tf.transpose(t, perm).dataSync() as Float32Array).slice();
}

/**
 * Converts a tfjs LayersModel (functional, single input, NHWC; after `fuse`) into ONNX `ModelProto`
 * bytes, opset {@link OPSET}, with a dynamic batch dimension and the given metadata.
 *
 * @throws UnsupportedLayerError for a layer without ONNX mapping (e.g. an unfused RefConv2D).
 */
export function exportOnnx(model: tf.LayersModel, options: ExportOnnxOptions = {}): Uint8Array {
  const layout = options.layout ?? 'NCHW';
  if (layout !== 'NCHW' && layout !== 'NHWC') throw new Error(`exportOnnx: layout must be 'NCHW' or 'NHWC', got '${String(layout)}'`);
  if (model.inputs.length !== 1) throw new Error(`exportOnnx: model '${model.name}' has ${model.inputs.length} inputs; exactly one is supported`);
  const g = new GraphBuilder();
  const input = model.inputs[0];
  if (input.shape.length !== 4) throw new Error(`exportOnnx: model input must be 4-D NHWC, got [${input.shape.join(', ')}]`);
  const [, H, W, C] = input.shape as [null, number, number, number];
  const outputs = model.outputs;
  // default names: 'logits' for one 2-D output, else the layer names (with the node index where a shared layer gives several outputs)
  const layerNames = outputs.map((o) => o.sourceLayer.name);
  const outNames =
    options.outputNames ??
    (outputs.length === 1 && outputs[0].shape.length === 2 ? ['logits'] : outputs.map((o, i) => (layerNames.indexOf(layerNames[i]) !== layerNames.lastIndexOf(layerNames[i]) ? `${layerNames[i]}_${o.nodeIndex}` : layerNames[i])));
  if (outNames.length !== outputs.length) throw new Error(`exportOnnx: ${outNames.length} output names for ${outputs.length} outputs`);
  if (new Set(outNames).size !== outNames.length) throw new Error(`exportOnnx: output names must be distinct, got [${outNames.join(', ')}]`);
  for (const n of outNames) g.reserved.add(n);
  const inputName = g.unique(options.inputName ?? 'input');
  if (g.reserved.has(options.inputName ?? 'input')) throw new Error(`exportOnnx: input name '${options.inputName ?? 'input'}' is also an output name`);
  /** ONNX name of each tfjs symbolic tensor (4-D ones are NCHW inside the graph). */
  const names = new Map<number, string>();
  names.set(input.id, layout === 'NHWC' ? g.node('Transpose', [inputName], 'input_nchw', [ints('perm', [0, 3, 1, 2])]) : inputName);
  /** SpaceToBatch outputs waiting for their conv: the conv becomes one dilated Conv (see the Conv case). */
  const pendingS2B = new Map<number, { src: string; block: number; paddings: [[number, number], [number, number]] }>();
  /** ZeroPadding2D outputs folded into their only consumer, a conv (its `pads`): [top, left, bottom, right]. */
  const pendingPad = new Map<number, { src: string; pads: number[] }>();
  /** Convs that already include their BatchToSpace (its output is the conv's output). */
  const absorbedB2S = new Set<string>();
  const nameOf = (layer: tf.layers.Layer, t: Sym): string => {
    const n = names.get(t.id);
    if (n === undefined) throw new Error(`exportOnnx: input of layer '${layer.name}' not computed yet (graph order)`);
    return n;
  };

  /** GlobalAveragePool outputs kept 4-D because their only consumer is the SE reshape to [N, 1, 1, C]. */
  const pooled4d = new Set<string>();
  /** Tensors computed so far (including pending SpaceToBatch / padding outputs). */
  const avail = new Set<number>([input.id]);
  type TfNode = tf.layers.Layer['inboundNodes'][number];

  /** Emits one application (node) of a layer; a nested model is emitted inline, its tensors mapped through. */
  const emitNode = (layer: tf.layers.Layer, node: TfNode): void => {
    const cls = layer.getClassName();
    const ins = node.inputTensors as Sym[];
    const nm = layer.name;
    if (layer instanceof tf.LayersModel) {
      // nested model (e.g. the backbone inside a detector / segmenter): inline its graph
      const selfNodes = layer.inboundNodes.filter((n) => n.inputTensors.every((t, i) => t === layer.inputs[i])).length;
      if (layer.inboundNodes.length - selfNodes !== 1) throw new UnsupportedLayerError(nm, cls, `nested model applied ${layer.inboundNodes.length - selfNodes} times; exactly once is supported`);
      if (ins.length !== layer.inputs.length) throw new UnsupportedLayerError(nm, cls, `applied to ${ins.length} tensors, has ${layer.inputs.length} inputs`);
      layer.inputs.forEach((inner, i) => {
        const outer = ins[i];
        if (inner.shape.length !== outer.shape.length || inner.shape.some((d, j) => j > 0 && d !== outer.shape[j])) {
          throw new UnsupportedLayerError(nm, cls, `nested model built for input [${inner.shape.map(String).join(', ')}] but applied to [${outer.shape.map(String).join(', ')}]; build it at the size it is applied to (static 'same' pads depend on it)`);
        }
        names.set(inner.id, nameOf(layer, outer));
        avail.add(inner.id);
      });
      emitContainer(layer);
      node.outputTensors.forEach((t, i) => names.set(t.id, nameOf(layer, layer.outputs[i])));
      return;
    }
    if (node.outputTensors.length !== 1) throw new UnsupportedLayerError(nm, cls, 'has several outputs');
    const outSym = node.outputTensors[0] as Sym;
    const cfg = layer.getConfig() as Record<string, unknown>;
    const unsupported = (detail: string): never => {
      throw new UnsupportedLayerError(nm, cls, detail);
    };
    const s2b = pendingS2B.get(ins[0].id);
    if (s2b && cls !== 'Conv2D' && cls !== 'DepthwiseConv2D') unsupported(`follows a SpaceToBatch; only a Conv2D / DepthwiseConv2D may (dilated conv)`);
    if (cls === 'SpaceToBatch') {
      if (layer.inboundNodes.length !== 1 || layer.outboundNodes.length !== 1) unsupported('must be used once and feed exactly one conv');
      pendingS2B.set(outSym.id, { src: nameOf(layer, ins[0]), block: cfg.block as number, paddings: cfg.paddings as [[number, number], [number, number]] });
      return;
    }
    if (cls === 'BatchToSpace') {
      if (!absorbedB2S.has(layer.name)) unsupported('must directly follow a conv that follows a SpaceToBatch');
      names.set(outSym.id, nameOf(layer, ins[0]));
      return;
    }
    const zp = pendingPad.get(ins[0].id);
    if (zp && cls !== 'Conv2D' && cls !== 'DepthwiseConv2D') throw new Error(`exportOnnx: internal error, padding folded into '${nm}' (${cls})`);
    const x = s2b ? s2b.src : zp ? zp.src : nameOf(layer, ins[0]);
    const checkActivation = (out: string): string => {
      const act = (cfg.activation as string | undefined) ?? 'linear';
      if (act === 'linear') return out;
      if (act === 'relu') return g.node('Relu', [out], `${nm}.relu`);
      return unsupported(`activation '${act}' is not supported (linear or relu)`);
    };
    const checkChannelsLast = (): void => {
      if (cfg.dataFormat !== undefined && cfg.dataFormat !== 'channelsLast') unsupported(`dataFormat '${String(cfg.dataFormat)}' (channelsLast only)`);
    };
    let out: string;
    switch (cls) {
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        checkChannelsLast();
        const w = layer.getWeights();
        const kernel = w[0];
        const [kh, kw, ci, co] = kernel.shape as number[];
        let strides = pair(cfg.strides);
        let dil = pair(cfg.dilationRate ?? 1);
        let pads = cfg.padding === 'same' ? samePads(spatial(layer, ins[0]), [kh, kw], strides, dil) : cfg.padding === 'valid' ? [0, 0, 0, 0] : unsupported(`padding '${String(cfg.padding)}'`);
        if (s2b) {
          // SpaceToBatch(d, P) -> conv (valid, stride 1) -> BatchToSpace(d, crops) = conv with dilation d on pad(x, P),
          // cropped: pads P - crops (TensorFlow's with_space_to_batch identity)
          if (cfg.padding !== 'valid' || strides[0] !== 1 || strides[1] !== 1 || dil[0] !== 1 || dil[1] !== 1) unsupported('a conv between SpaceToBatch/BatchToSpace must be valid, stride 1, dilation 1');
          if (layer.inboundNodes.length !== 1 || layer.outboundNodes.length !== 1 || layer.outboundNodes[0].outboundLayer.getClassName() !== 'BatchToSpace') unsupported('follows a SpaceToBatch but does not feed exactly one BatchToSpace');
          const b2s = layer.outboundNodes[0].outboundLayer;
          const crops = b2s.getConfig().crops as [[number, number], [number, number]];
          const P = s2b.paddings;
          pads = [P[0][0] - crops[0][0], P[1][0] - crops[1][0], P[0][1] - crops[0][1], P[1][1] - crops[1][1]];
          if (pads.some((p) => p < 0) || (b2s.getConfig().block as number) !== s2b.block) unsupported(`SpaceToBatch paddings ${JSON.stringify(P)} / BatchToSpace crops ${JSON.stringify(crops)} do not make a dilated conv`);
          strides = [1, 1];
          dil = [s2b.block, s2b.block];
          absorbedB2S.add(b2s.name);
        }
        if (zp) {
          if (cfg.padding !== 'valid') unsupported('internal error: a folded ZeroPadding2D before a non-valid conv');
          pads = pads.map((p, i) => p + zp.pads[i]);
        }
        let wName: string;
        let group = 1;
        if (cls === 'Conv2D') {
          wName = g.layerInit(layer, 'weight', [co, ci, kh, kw], () => transposeData(kernel, [3, 2, 0, 1]));
        } else {
          // [K, K, C, m] -> [C, m, K, K] -> [C·m, 1, K, K]
          wName = g.layerInit(layer, 'weight', [ci * co, 1, kh, kw], () => transposeData(kernel, [2, 3, 0, 1]));
          group = ci;
        }
        const inputs = [x, wName];
        if (w.length > 1) inputs.push(g.layerInit(layer, 'bias', [w[1].shape[0]], () => (w[1].dataSync() as Float32Array).slice()));
        out = g.node('Conv', inputs, nm, [ints('kernel_shape', [kh, kw]), ints('strides', strides), ints('dilations', dil), ints('pads', pads), int('group', group)]);
        out = checkActivation(out);
        break;
      }
      case 'Dense': {
        const w = layer.getWeights();
        if (ins[0].shape.length !== 2) unsupported(`input must be 2-D, got [${ins[0].shape.join(', ')}]`);
        const [fi, fo] = w[0].shape;
        const inputs = [x, g.layerInit(layer, 'weight', [fi, fo], () => (w[0].dataSync() as Float32Array).slice())];
        if (w.length > 1) inputs.push(g.layerInit(layer, 'bias', [fo], () => (w[1].dataSync() as Float32Array).slice()));
        out = checkActivation(g.node('Gemm', inputs, nm, [float('alpha', 1), float('beta', 1)]));
        break;
      }
      case 'BatchNormalization': {
        const axis = cfg.axis as number;
        if (axis !== -1 && axis !== ins[0].shape.length - 1) unsupported(`axis ${axis} (channels-last only)`);
        if (ins[0].shape.length !== 4) unsupported('only 4-D inputs');
        const ws = layer.getWeights();
        const c = ws[ws.length - 1].shape[0];
        const byName = new Map(layer.weights.map((v, i) => [v.originalName.split('/').pop() as string, ws[i]]));
        const get = (k: string, fill: number): Float32Array => (byName.has(k) ? (byName.get(k)!.dataSync() as Float32Array).slice() : new Float32Array(c).fill(fill));
        out = g.node(
          'BatchNormalization',
          [x, g.floatInit(`${nm}.weight`, [c], get('gamma', 1)), g.floatInit(`${nm}.bias`, [c], get('beta', 0)), g.floatInit(`${nm}.running_mean`, [c], get('moving_mean', 0)), g.floatInit(`${nm}.running_var`, [c], get('moving_variance', 1))],
          nm,
          [float('epsilon', cfg.epsilon as number)],
        );
        break;
      }
      case 'ReLU': {
        if ((cfg.negativeSlope as number | undefined) || (cfg.threshold as number | undefined)) unsupported('negativeSlope/threshold are not supported');
        const maxValue = cfg.maxValue as number | null | undefined;
        if (maxValue == null) out = g.node('Relu', [x], nm);
        else out = g.node('Clip', [x, g.floatInit(`${nm}.min`, [], new Float32Array([0])), g.floatInit(`${nm}.max`, [], new Float32Array([maxValue]))], nm);
        break;
      }
      case 'Activation': {
        const a = cfg.activation as string;
        const op = { relu: 'Relu', sigmoid: 'Sigmoid', tanh: 'Tanh', linear: 'Identity', softmax: 'Softmax' }[a];
        if (!op) unsupported(`activation '${a}'`);
        if (op === 'Softmax' && ins[0].shape.length !== 2) unsupported('softmax on a non-2-D tensor');
        out = g.node(op!, [x], nm);
        break;
      }
      case 'HardSwish':
        out = g.node('HardSwish', [x], nm);
        break;
      case 'HardSigmoid':
        // torchvision hardsigmoid = relu6(x + 3) / 6 = max(0, min(1, x/6 + 1/2))
        out = g.node('HardSigmoid', [x], nm, [float('alpha', 1 / 6), float('beta', 0.5)]);
        break;
      case 'Add':
      case 'Multiply': {
        const op = cls === 'Add' ? 'Add' : 'Mul';
        out = x;
        for (let i = 1; i < ins.length; i++) out = g.node(op, [out, nameOf(layer, ins[i])], nm);
        break;
      }
      case 'Concatenate': {
        const rank = ins[0].shape.length;
        let axis = cfg.axis as number;
        if (axis < 0) axis += rank;
        if (rank === 4) axis = [0, 2, 3, 1][axis]; // NHWC axis -> NCHW axis
        out = g.node('Concat', ins.map((t) => nameOf(layer, t)), nm, [int('axis', axis)]);
        break;
      }
      case 'ZeroPadding2D': {
        checkChannelsLast();
        const [[t, b], [l, r]] = cfg.padding as [[number, number], [number, number]];
        const next = layer.inboundNodes.length === 1 && layer.outboundNodes.length === 1 ? layer.outboundNodes[0].outboundLayer : undefined;
        const nextCls = next?.getClassName();
        if (next && next.inboundNodes.length === 1 && (nextCls === 'Conv2D' || nextCls === 'DepthwiseConv2D') && next.getConfig().padding === 'valid') {
          // zero padding then a 'valid' conv = the conv with these pads (one node fewer)
          pendingPad.set(outSym.id, { src: x, pads: [t, l, b, r] });
          return;
        }
        out = g.node('Pad', [x, g.int64Init(`${nm}.pads`, [0, 0, t, l, 0, 0, b, r])], nm, []);
        break;
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        checkChannelsLast();
        const k = pair(cfg.poolSize);
        const s = pair(cfg.strides ?? cfg.poolSize);
        const pads = cfg.padding === 'same' ? samePads(spatial(layer, ins[0]), k, s, [1, 1]) : [0, 0, 0, 0];
        if (cls === 'AveragePooling2D' && pads.some((p) => p > 0)) unsupported("'same' average pooling (TF excludes the padding from the mean)");
        out = g.node(cls === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool', [x], nm, [ints('kernel_shape', k), ints('strides', s), ints('pads', pads)]);
        break;
      }
      case 'GlobalAveragePooling2D': {
        checkChannelsLast();
        if (cfg.keepDims) out = g.node('GlobalAveragePool', [x], nm);
        else if (feedsOnlySqueezeExcitationReshape(layer)) {
          // squeeze-excitation: pool -> [N, C] -> reshape [N, 1, 1, C] is the 4-D pool itself in NCHW;
          // no Flatten / Reshape pair (each would cut onnxruntime's blocked-layout conv chain)
          out = g.node('GlobalAveragePool', [x], nm);
          pooled4d.add(out);
        } else out = g.node('Flatten', [g.node('GlobalAveragePool', [x], `${nm}.pool`)], nm, [int('axis', 1)]);
        break;
      }
      case 'Reshape': {
        const target = cfg.targetShape as number[];
        // the squeeze-excitation reshape [N, C] -> [N, 1, 1, C] (NHWC) is [N, C, 1, 1] in NCHW
        if (ins[0].shape.length === 2 && target.length === 3 && target[0] === 1 && target[1] === 1) {
          out = pooled4d.has(x) ? x : g.node('Reshape', [x, g.int64Init(`${nm}.shape`, [0, target[2], 1, 1])], nm);
        } else if (target.length === 1 && ins[0].shape.length === 4 && ins[0].shape[1] === 1 && ins[0].shape[2] === 1) {
          out = g.node('Flatten', [x], nm, [int('axis', 1)]);
        } else {
          unsupported(`reshape [${ins[0].shape.join(', ')}] -> [N, ${target.join(', ')}] (only [N, C] <-> [N, 1, 1, C])`);
        }
        break;
      }
      case 'Flatten': {
        const s = ins[0].shape;
        // tfjs flattens NHWC; the graph holds NCHW, so a map larger than 1x1 goes back to NHWC first
        const src = s.length === 4 && !(s[1] === 1 && s[2] === 1) ? g.node('Transpose', [x], `${nm}.nhwc`, [ints('perm', [0, 2, 3, 1])]) : x;
        out = g.node('Flatten', [src], nm, [int('axis', 1)]);
        break;
      }
      case 'Dropout':
      case 'SpatialDropout2D':
      case 'GaussianNoise':
      case 'GaussianDropout':
        out = x; // identity at inference
        break;
      case 'ChannelShuffle': {
        // torchvision channel_shuffle: [N, g, C/g, H, W] -> transpose(1, 2) -> [N, C, H, W]
        const groups = cfg.groups as number;
        const c = ins[0].shape[3] as number;
        const [h, w] = spatial(layer, ins[0]);
        const r = g.node('Reshape', [x, g.int64Init(`${nm}.shape5`, [0, groups, c / groups, h, w])], `${nm}.split`);
        const tr = g.node('Transpose', [r], `${nm}.transpose`, [ints('perm', [0, 2, 1, 3, 4])]);
        out = g.node('Reshape', [tr, g.int64Init(`${nm}.shape4`, [0, c, h, w])], nm);
        break;
      }
      case 'ChannelSlice': {
        const start = cfg.start as number;
        const size = cfg.size as number;
        out = g.node('Slice', [x, g.int64Init(`${nm}.starts`, [start]), g.int64Init(`${nm}.ends`, [start + size]), g.int64Init(`${nm}.axes`, [1])], nm);
        break;
      }
      case 'UpSampling2D': {
        // tfjs: resizeNearestNeighbor / resizeBilinear to (size · H, size · W), alignCorners false, halfPixelCenters false
        checkChannelsLast();
        const [sh, sw] = pair(cfg.size ?? [2, 2]);
        const interp = (cfg.interpolation as string | undefined) ?? 'nearest';
        if (interp !== 'nearest' && interp !== 'bilinear') unsupported(`interpolation '${interp}'`);
        const attrs = [str('mode', interp === 'nearest' ? 'nearest' : 'linear'), str('coordinate_transformation_mode', 'asymmetric')];
        if (interp === 'nearest') attrs.push(str('nearest_mode', 'floor'));
        out = g.node('Resize', [x, '', g.floatInit(`${nm}.scales`, [4], new Float32Array([1, 1, sh, sw]))], nm, attrs);
        break;
      }
      case 'ResizeBilinearLike': {
        // @refconv/segment: bilinear resize of inputs[0] to inputs[1]'s H, W, half-pixel centres (PyTorch align_corners=False)
        const [h, w] = spatial(layer, ins[0]);
        const [th, tw] = spatial(layer, ins[1]);
        if (h === th && w === tw) {
          out = g.node('Identity', [x], nm);
          break;
        }
        // sizes = [N, C] of x (the batch is symbolic) ++ [th, tw]
        const nc = g.node('Slice', [g.node('Shape', [x], `${nm}.shape`), g.int64Init(`${nm}.nc_start`, [0]), g.int64Init(`${nm}.nc_end`, [2])], `${nm}.nc`);
        const sizes = g.node('Concat', [nc, g.int64Init(`${nm}.hw`, [th, tw])], `${nm}.sizes`, [int('axis', 0)]);
        out = g.node('Resize', [x, '', '', sizes], nm, [str('mode', 'linear'), str('coordinate_transformation_mode', 'half_pixel')]);
        break;
      }
      case 'GlobalAvgPoolKeepDims':
        // @refconv/segment: mean over H, W keeping them, [N, 1, 1, C] (NHWC) = GlobalAveragePool in NCHW
        out = g.node('GlobalAveragePool', [x], nm);
        break;
      case 'ChannelZeroPad': {
        const before = cfg.before as number;
        const after = cfg.after as number;
        out = g.node('Pad', [x, g.int64Init(`${nm}.pads`, [0, before, 0, 0, 0, after, 0, 0])], nm);
        break;
      }
      default:
        if (cls === 'RefConv2D') unsupported('RefConv layers must be fused first: fuse(model, { foldBatchNorm: true }) from @refconv/core');
        unsupported('no ONNX mapping for this layer kind');
    }
    names.set(outSym.id, out!);
  };

  /** Emits every node of a container in dependency order (a shared layer's nodes may sit at several depths). */
  const emitContainer = (container: tf.LayersModel): void => visitLayerNodesInOrder(container, avail, emitNode, 'exportOnnx');
  emitContainer(model);

  const graphOutputs: OnnxNs.IValueInfoProto[] = [];
  outputs.forEach((o, i) => {
    let src = names.get(o.id)!;
    const want = outNames[i];
    if (o.shape.length === 4 && layout === 'NHWC') src = g.node('Transpose', [src], `${want}.nhwc`, [ints('perm', [0, 2, 3, 1])]);
    const final = want;
    g.nodes.push({ opType: 'Identity', input: [src], output: [final], name: g.unique(`${final}/Identity`) });
    const shp = o.shape.slice(1) as number[];
    const dims = o.shape.length === 4 && layout === 'NCHW' ? [shp[2], shp[0], shp[1]] : shp;
    graphOutputs.push(valueInfo(final, dims));
  });

  const inDims = layout === 'NCHW' ? [C, H, W] : [H, W, C];
  const md = options.metadata ?? {};
  const props: Record<string, string> = { [META_KEYS.layout]: layout, [META_KEYS.inputSize]: JSON.stringify(md.inputSize ?? [H, W]) };
  if (md.mean) props[META_KEYS.mean] = JSON.stringify(md.mean);
  if (md.std) props[META_KEYS.std] = JSON.stringify(md.std);
  if (md.classNames) props[META_KEYS.classNames] = JSON.stringify(md.classNames);
  if (md.arch) props[META_KEYS.arch] = md.arch;
  Object.assign(props, md.extra ?? {});

  const modelProto = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: '@refconv/deploy',
    producerVersion: '0.1.0',
    graph: {
      name: options.graphName ?? model.name,
      node: g.nodes,
      initializer: g.initializers,
      input: [valueInfo(inputName, inDims)],
      output: graphOutputs,
    },
    metadataProps: Object.entries(props).map(([key, value]) => ({ key, value })),
  });
  const err = onnx.ModelProto.verify(modelProto);
  if (err) throw new Error(`exportOnnx: internal error, invalid ModelProto: ${err}`);
  return onnx.ModelProto.encode(modelProto).finish();
}

/** Whether a GlobalAveragePooling2D (no keepDims) is used once, by a Reshape to [1, 1, C] (squeeze-excitation). */
function feedsOnlySqueezeExcitationReshape(layer: tf.layers.Layer): boolean {
  if (layer.inboundNodes.length !== 1 || layer.outboundNodes.length !== 1) return false;
  const next = layer.outboundNodes[0]!.outboundLayer;
  const target = next.getConfig().targetShape as number[] | undefined;
  return next.getClassName() === 'Reshape' && next.inboundNodes.length === 1 && !!target && target.length === 3 && target[0] === 1 && target[1] === 1;
}

/** A float tensor ValueInfo with a symbolic `batch` first dimension. */
function valueInfo(name: string, dims: (number | null)[]): OnnxNs.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimParam: 'batch' }, ...dims.map((d) => (d == null ? { dimParam: `${name}_dim` } : { dimValue: d }))] } } },
  };
}

/** Reads the `refconv.*` metadata back from ONNX bytes (for predict; no runtime needed). */
export function readOnnxMetadata(bytes: Uint8Array): ModelMetadata {
  const m = onnx.ModelProto.decode(bytes);
  const props: Record<string, string> = {};
  for (const p of m.metadataProps) props[p.key ?? ''] = p.value ?? '';
  return parseMetadataProps(props);
}
