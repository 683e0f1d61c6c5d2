/**
 * Building blocks shared by the backbone families: convolutions padded exactly as PyTorch pads
 * them, BatchNorm with PyTorch's settings, activations, and the Conv-BN-Act triple
 * (torchvision's `Conv2dNormActivation`).
 *
 * Layer naming: a layer that holds parameters is named by its PyTorch module path
 * (`layer1.0.conv1`, `features.3.conv.1.0`), so the state-dict key is `<layer name>.<param>`.
 * Parameter-free helpers get the path of the module they belong to plus a suffix that no
 * torchvision module uses (`conv1.pad`, `layer1.0.add`, `features.2.block.2.mul`).
 * tfjs accepts '.' in layer names, so no separator translation is needed.
 */
import * as tf from '@tensorflow/tfjs';
import { BatchToSpace, HardSigmoid, HardSwish, SpaceToBatch } from './custom.js';

export type SymbolicTensor = tf.SymbolicTensor;

/** Activations used by the torchvision backbones. */
export type ActivationKind = 'relu' | 'relu6' | 'hardswish' | 'hardsigmoid' | 'none';

/** BatchNorm settings in PyTorch terms. */
export interface NormSettings {
  /** PyTorch `eps` (torchvision default 1e-5; MobileNetV3 uses 1e-3). */
  eps: number;
  /** PyTorch `momentum` (default 0.1; MobileNetV3 uses 0.01). tfjs momentum = 1 - this. */
  momentum: number;
}

export const TORCH_BN: NormSettings = { eps: 1e-5, momentum: 0.1 };

/** One convolution, described as PyTorch's nn.Conv2d would be. */
export interface ConvSpec {
  /** PyTorch module path, e.g. `layer1.0.conv2`. */
  name: string;
  /** Output channels (for depthwise: must equal the input channels times `depthMultiplier`). */
  filters: number;
  kernel: number;
  stride?: number;
  dilation?: number;
  /** Depthwise conv (groups = in_channels). */
  depthwise?: boolean;
  /** Add a bias (PyTorch `bias=True`). Default false: every conv here is followed by BN. */
  bias?: boolean;
}

function channels(x: SymbolicTensor): number {
  const c = x.shape[x.shape.length - 1];
  if (typeof c !== 'number') throw new Error(`backbones: channel dimension of '${x.name}' is unknown`);
  return c;
}

/**
 * Init for training from scratch: torchvision's Kaiming (fan_out, gain sqrt 2) variance, drawn
 * from a uniform rather than a normal distribution: tfjs samples normals in JavaScript, ~4.5x
 * slower, which dominates building ResNet-101. Pretrained weights replace it anyway.
 */
function convInit(): ReturnType<typeof tf.initializers.varianceScaling> {
  return tf.initializers.varianceScaling({ scale: 2, mode: 'fanOut', distribution: 'uniform' });
}

function convLayer(spec: ConvSpec, inChannels: number, padding: 'same' | 'valid', strides: number): tf.layers.Layer {
  const common = { name: spec.name, kernelSize: spec.kernel, strides, padding, useBias: spec.bias ?? false };
  if (spec.depthwise) {
    if (spec.filters % inChannels !== 0) {
      throw new Error(`backbones: depthwise conv '${spec.name}' has ${inChannels} input channels but ${spec.filters} outputs (not a multiple)`);
    }
    return tf.layers.depthwiseConv2d({ ...common, depthMultiplier: spec.filters / inChannels, depthwiseInitializer: convInit() });
  }
  return tf.layers.conv2d({ ...common, filters: spec.filters, kernelInitializer: convInit() });
}

/**
 * A convolution with PyTorch's symmetric padding `dilation * (kernel - 1) / 2`.
 *
 * TF's 'same' padding is asymmetric on strided convs (the extra row goes at the bottom), which
 * shifts the sampling grid relative to PyTorch; so strided convs get an explicit ZeroPadding2D
 * and 'valid'. Stride-1 convs with odd kernels are symmetric under 'same' and use it. Dilated
 * convs go through SpaceToBatch / BatchToSpace (see {@link SpaceToBatch} for why).
 */
export function conv(x: SymbolicTensor, spec: ConvSpec): SymbolicTensor {
  const stride = spec.stride ?? 1;
  const k = spec.kernel;
  const dilation = k === 1 ? 1 : (spec.dilation ?? 1); // a 1x1 kernel is unaffected by dilation
  if (k % 2 !== 1) throw new Error(`backbones: conv '${spec.name}' has even kernel ${k}; only odd kernels are padded like PyTorch here`);
  if (stride > 1 && dilation > 1) throw new Error(`backbones: conv '${spec.name}' has stride ${stride} and dilation ${dilation}; use one of them`);
  const cin = channels(x);
  const pad = (dilation * (k - 1)) / 2;
  if (dilation > 1) {
    const [, h, w] = x.shape;
    if (typeof h !== 'number' || typeof w !== 'number') throw new Error(`backbones: dilated conv '${spec.name}' needs a fixed input size`);
    // Pad to a multiple of the dilation; the extra rows come back out as crops.
    const extraH = (dilation - ((h + 2 * pad) % dilation)) % dilation;
    const extraW = (dilation - ((w + 2 * pad) % dilation)) % dilation;
    const s2b = new SpaceToBatch({ name: `${spec.name}.s2b`, block: dilation, paddings: [[pad, pad + extraH], [pad, pad + extraW]] });
    const y = convLayer(spec, cin, 'valid', 1).apply(s2b.apply(x)) as SymbolicTensor;
    return new BatchToSpace({ name: `${spec.name}.b2s`, block: dilation, crops: [[0, extraH], [0, extraW]] }).apply(y) as SymbolicTensor;
  }
  if (stride === 1 || pad === 0) return convLayer(spec, cin, pad === 0 ? 'valid' : 'same', stride).apply(x) as SymbolicTensor;
  const padded = tf.layers.zeroPadding2d({ name: `${spec.name}.pad`, padding: pad }).apply(x) as SymbolicTensor;
  return convLayer(spec, cin, 'valid', stride).apply(padded) as SymbolicTensor;
}

/** BatchNorm over channels with PyTorch's eps and momentum. */
export function batchNorm(x: SymbolicTensor, name: string, norm: NormSettings = TORCH_BN): SymbolicTensor {
  return tf.layers.batchNormalization({ name, axis: -1, epsilon: norm.eps, momentum: 1 - norm.momentum }).apply(x) as SymbolicTensor;
}

/** An activation layer; `none` returns x unchanged. */
export function activation(x: SymbolicTensor, kind: ActivationKind, name: string): SymbolicTensor {
  switch (kind) {
    case 'none': return x;
    case 'relu': return tf.layers.reLU({ name }).apply(x) as SymbolicTensor;
    case 'relu6': return tf.layers.reLU({ name, maxValue: 6 }).apply(x) as SymbolicTensor;
    case 'hardswish': return new HardSwish({ name }).apply(x) as SymbolicTensor;
    case 'hardsigmoid': return new HardSigmoid({ name }).apply(x) as SymbolicTensor;
  }
}

/**
 * torchvision's `Conv2dNormActivation` (a Sequential): `<name>.0` conv, `<name>.1` BN, `<name>.2` activation.
 */
export function convNormAct(
  x: SymbolicTensor,
  name: string,
  spec: Omit<ConvSpec, 'name'>,
  act: ActivationKind,
  norm: NormSettings = TORCH_BN,
): SymbolicTensor {
  const y = batchNorm(conv(x, { ...spec, name: `${name}.0` }), `${name}.1`, norm);
  return activation(y, act, `${name}.2`);
}

/** PyTorch's MaxPool2d(kernel, stride, padding). Zero padding equals PyTorch's -inf padding because every use follows a ReLU (inputs >= 0). */
export function maxPool(x: SymbolicTensor, name: string, kernel: number, stride: number, padding: number): SymbolicTensor {
  const padded = padding > 0 ? (tf.layers.zeroPadding2d({ name: `${name}.pad`, padding }).apply(x) as SymbolicTensor) : x;
  return tf.layers.maxPooling2d({ name, poolSize: kernel, strides: stride, padding: 'valid' }).apply(padded) as SymbolicTensor;
}

/** Element-wise sum (residual connection). */
export function add(a: SymbolicTensor, b: SymbolicTensor, name: string): SymbolicTensor {
  return tf.layers.add({ name }).apply([a, b]) as SymbolicTensor;
}

/** Global average pooling to [N, C]: PyTorch's `AdaptiveAvgPool2d(1)` + flatten (or `x.mean([2, 3])`). */
export function globalAvgPool(x: SymbolicTensor, name: string): SymbolicTensor {
  return tf.layers.globalAveragePooling2d({ name }).apply(x) as SymbolicTensor;
}

/** nn.Linear: Dense with PyTorch's default init U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias. */
export function linear(x: SymbolicTensor, name: string, units: number): SymbolicTensor {
  const fanIn = channels(x);
  const bound = 1 / Math.sqrt(fanIn);
  return tf.layers.dense({
    name,
    units,
    kernelInitializer: tf.initializers.randomUniform({ minval: -bound, maxval: bound }),
    biasInitializer: tf.initializers.randomUniform({ minval: -bound, maxval: bound }),
  }).apply(x) as SymbolicTensor;
}

/** nn.Dropout; inactive at inference, as in PyTorch's eval mode. */
export function dropout(x: SymbolicTensor, name: string, rate: number): SymbolicTensor {
  return rate > 0 ? (tf.layers.dropout({ name, rate }).apply(x) as SymbolicTensor) : x;
}

/** Channel count of a symbolic tensor. */
export { channels };
