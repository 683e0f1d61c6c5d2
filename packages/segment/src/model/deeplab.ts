/**
 * DeepLabV3 and DeepLabV3+ heads on a feature backbone, as torchvision's
 * `segmentation/deeplabv3.py` (ASPP, DeepLabHead, FCNHead aux) and the DeepLabV3+ paper's
 * decoder:
 *
 * - ASPP: 1x1 conv; three 3x3 convs with dilation 6/12/18 at output stride 16 (12/24/36 at
 *   8); image pooling (global average -> 1x1 conv -> bilinear back); concat -> 1x1
 *   projection; every conv followed by BatchNorm + ReLU; dropout after the projection.
 * - DeepLabV3 head: ASPP -> 3x3 conv -> 1x1 classifier.
 * - DeepLabV3+: ASPP output upsampled to the stride-4 features, concatenated with their
 *   1x1 reduction to 48 channels, two 3x3 convs, 1x1 classifier.
 * - Optional auxiliary FCN head on the stride-16 backbone stage (C4).
 *
 * Logits are upsampled bilinearly (half-pixel centres) to the input size, NHWC `[B, H, W, K]`.
 */
import * as tf from '@tensorflow/tfjs';
import { GlobalAvgPoolKeepDims, ResizeBilinearLike } from './layers.js';

/** Segmenter architectures. */
export type SegArch = 'deeplabv3' | 'deeplabv3plus';

/**
 * A feature backbone: a model from `[B, H, W, 3]` to multi-scale features. Contract (that of
 * `createModel(arch, { features: true, outputStride })` in @refconv/backbones): outputs are
 * ordered by depth, the first at stride 4 (C2), the second-last the stage before the last
 * (C4, used by the aux head), the last the deepest (C5, stride = the output stride).
 */
export type FeatureBackbone = tf.LayersModel;

/** Options of {@link buildSegmenter}. */
export interface SegmenterOptions {
  arch: SegArch;
  /** Number of classes K (logits channels). */
  numClasses: number;
  /** Feature backbone (see {@link FeatureBackbone}); it becomes a nested model named `backbone`. */
  backbone: FeatureBackbone;
  /** Output stride the backbone was built with; selects the ASPP rates. Default 16. */
  outputStride?: 8 | 16;
  /** ASPP / head width (torchvision 256). */
  channels?: number;
  /** Low-level projection width of the V3+ decoder (48 in the paper). */
  lowLevelChannels?: number;
  /** Dropout after the ASPP projection (torchvision 0.5). */
  dropout?: number;
  /** Add the auxiliary FCN head on C4 (second output). */
  aux?: boolean;
  /** Input `[H, W]`; null dims accept any size (countFlops needs fixed sizes). Default [null, null]. */
  inputSize?: [number | null, number | null];
  /** Input channels (3 for RGB; tests feed feature maps directly). */
  inputChannels?: number;
}

/** ASPP dilation rates for an output stride (6/12/18 at 16, doubled at 8). */
export function asppRates(outputStride: 8 | 16): [number, number, number] {
  if (outputStride === 16) return [6, 12, 18];
  if (outputStride === 8) return [12, 24, 36];
  throw new Error(`output stride must be 8 or 16, got ${String(outputStride)}`);
}

/** conv (no bias) -> BatchNorm (PyTorch eps/momentum) -> ReLU, named `<name>.conv` / `.bn` / `.relu`. */
function convBnRelu(x: tf.SymbolicTensor, name: string, filters: number, kernelSize: number, dilation = 1): tf.SymbolicTensor {
  const conv = tf.layers.conv2d({ name: `${name}.conv`, filters, kernelSize, padding: 'same', dilationRate: dilation, useBias: false, kernelInitializer: 'heNormal' });
  const bn = tf.layers.batchNormalization({ name: `${name}.bn`, epsilon: 1e-5, momentum: 0.9 });
  const relu = tf.layers.activation({ name: `${name}.relu`, activation: 'relu' });
  return relu.apply(bn.apply(conv.apply(x))) as tf.SymbolicTensor;
}

/** ASPP on `x` (see module doc). */
function aspp(x: tf.SymbolicTensor, rates: number[], channels: number, dropout: number): tf.SymbolicTensor {
  const branches = [convBnRelu(x, 'aspp.b0', channels, 1)];
  rates.forEach((r, i) => branches.push(convBnRelu(x, `aspp.b${i + 1}`, channels, 3, r)));
  const pooled = new GlobalAvgPoolKeepDims({ name: 'aspp.pool.gap' }).apply(x) as tf.SymbolicTensor;
  const pooledFeat = convBnRelu(pooled, 'aspp.pool', channels, 1);
  branches.push(new ResizeBilinearLike({ name: 'aspp.pool.up' }).apply([pooledFeat, x]) as tf.SymbolicTensor);
  const cat = tf.layers.concatenate({ name: 'aspp.concat', axis: -1 }).apply(branches) as tf.SymbolicTensor;
  const projected = convBnRelu(cat, 'aspp.project', channels, 1);
  return dropout > 0 ? (tf.layers.dropout({ name: 'aspp.dropout', rate: dropout }).apply(projected) as tf.SymbolicTensor) : projected;
}

function classifier(x: tf.SymbolicTensor, name: string, numClasses: number): tf.SymbolicTensor {
  return tf.layers.conv2d({ name, filters: numClasses, kernelSize: 1, useBias: true }).apply(x) as tf.SymbolicTensor;
}

/**
 * Builds a DeepLabV3 / V3+ model. Outputs: logits `[B, H, W, K]`, plus aux logits of the
 * same shape when `aux` is set.
 */
export function buildSegmenter(opts: SegmenterOptions): tf.LayersModel {
  const outputStride = opts.outputStride ?? 16;
  const channels = opts.channels ?? 256;
  const [h, w] = opts.inputSize ?? [null, null];
  if (!(opts.numClasses >= 1)) throw new Error(`numClasses must be >= 1, got ${opts.numClasses}`);
  const input = tf.input({ shape: [h, w, opts.inputChannels ?? 3], name: 'image' });
  const featsRaw = opts.backbone.apply(input);
  const feats = (Array.isArray(featsRaw) ? featsRaw : [featsRaw]) as tf.SymbolicTensor[];
  if (feats.length < 2 && (opts.arch === 'deeplabv3plus' || opts.aux)) {
    throw new Error(`backbone '${opts.backbone.name}' returns ${feats.length} feature map(s); ${opts.arch}${opts.aux ? ' with aux' : ''} needs C2..C5`);
  }
  const high = feats[feats.length - 1]!;
  const context = aspp(high, asppRates(outputStride), channels, opts.dropout ?? 0.5);
  let logits: tf.SymbolicTensor;
  if (opts.arch === 'deeplabv3') {
    logits = classifier(convBnRelu(context, 'head', channels, 3), 'head.cls', opts.numClasses);
  } else if (opts.arch === 'deeplabv3plus') {
    const low = convBnRelu(feats[0]!, 'decoder.reduce', opts.lowLevelChannels ?? 48, 1);
    const up = new ResizeBilinearLike({ name: 'decoder.up' }).apply([context, low]) as tf.SymbolicTensor;
    const cat = tf.layers.concatenate({ name: 'decoder.concat', axis: -1 }).apply([up, low]) as tf.SymbolicTensor;
    const fused = convBnRelu(convBnRelu(cat, 'decoder.fuse0', channels, 3), 'decoder.fuse1', channels, 3);
    logits = classifier(fused, 'decoder.cls', opts.numClasses);
  } else {
    throw new Error(`unknown segmentation architecture '${String(opts.arch)}' (expected deeplabv3 or deeplabv3plus)`);
  }
  const outputs = [new ResizeBilinearLike({ name: 'logits' }).apply([logits, input]) as tf.SymbolicTensor];
  if (opts.aux) {
    const c4 = feats[feats.length - 2]!;
    const c4Channels = c4.shape[3] as number;
    let a = convBnRelu(c4, 'aux', Math.max(1, Math.floor(c4Channels / 4)), 3);
    a = tf.layers.dropout({ name: 'aux.dropout', rate: 0.1 }).apply(a) as tf.SymbolicTensor;
    outputs.push(new ResizeBilinearLike({ name: 'aux_logits' }).apply([classifier(a, 'aux.cls', opts.numClasses), input]) as tf.SymbolicTensor);
  }
  return tf.model({ inputs: input, outputs, name: opts.arch });
}
