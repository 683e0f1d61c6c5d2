/**
 * The conv-gradient kernels (`Conv2DBackpropInput`, `Conv2DBackpropFilter`) of the tensorflow
 * backend, replaced by one dispatcher each that picks, per call:
 * 1. the correctness route of the kernel self-check, where this host's oneDNN kernel failed
 *    (1x1 convs as MatMul, or TF's EXPLICIT-padding kernels, which TF's oneDNN rewrite leaves to
 *    Eigen), whether or not the fast kernels are on;
 * 2. with the fast kernels on, the speed routes: with oneDNN off, the input gradient on small maps
 *    as a forward conv of the (zero-stuffed) output gradient with the flipped, transposed kernel
 *    (TF's Eigen backprop-input kernel degrades badly as maps shrink and channels grow: ~1 s for a
 *    2x2x512 map whose forward conv takes ~5 ms); with oneDNN on, the filter gradient of spatial
 *    convs with >= 64 input channels on Eigen (1.15-2x faster on the project's AVX2 host), only
 *    where the self-check verified that kernel on this host;
 * 3. TF's own kernel otherwise.
 */
import * as tf from '@tensorflow/tfjs';
import { floatTypeAttr, forwardPadding, native, oneDnnRequested, replaceKernel, restoreKernels, type Pad } from './native.js';
import { isPointwise, pointwiseFilterGradient, pointwiseInputGradient } from './pointwise-matmul.js';
import { state } from './state.js';
import { mapBucket } from '../kernel-check.js';

const warned = new Set<string>();
function warnOnce(message: string): void {
  if (warned.has(message)) return;
  warned.add(message);
  process.emitWarning(message, { code: 'REFCONV_KERNEL_CHECK' });
}

/** TF's own conv-gradient kernels replaced by {@link overrideConvGradient}, by kernel name. */
const originalConvGradients = new Map<string, tf.KernelConfig>();

/** Inserts stride-1 zeros between the rows/columns of dy (the transpose of a strided conv's sampling). */
function zeroStuff(dy: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  if (sh === 1 && sw === 1) return dy;
  const [n, h, w, c] = dy.shape;
  const spread = tf.pad(tf.reshape(dy, [n, h, 1, w, 1, c]), [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
  return tf.slice(tf.reshape(spread, [n, h * sh, w * sw, c]), [0, 0, 0, 0], [n, (h - 1) * sh + 1, (w - 1) * sw + 1, c]) as tf.Tensor4D;
}

/** Pads (or crops, for negative amounts) one spatial axis. */
function padOrCrop(x: tf.Tensor4D, axis: 1 | 2, before: number, after: number): tf.Tensor4D {
  const pads: Array<[number, number]> = [[0, 0], [0, 0], [0, 0], [0, 0]];
  pads[axis] = [Math.max(before, 0), Math.max(after, 0)];
  let y = tf.pad(x, pads) as tf.Tensor4D;
  if (before < 0 || after < 0) {
    const begin = [0, 0, 0, 0];
    const size = [...y.shape];
    begin[axis] = Math.max(-before, 0);
    size[axis] -= Math.max(-before, 0) + Math.max(-after, 0);
    y = tf.slice(y, begin, size);
  }
  return y;
}

/**
 * dL/dx of y = conv2d(x, W) as a forward conv: dx = conv(zero-stuffed dy padded by K-1-p, W flipped
 * spatially with in/out channels swapped), cropped to x's shape.
 */
export function conv2dInputGradient(dy: tf.Tensor4D, filter: tf.Tensor4D, inputShape: number[], strides: [number, number], pad: Pad): tf.Tensor4D {
  return tf.tidy(() => {
    const [, h, w] = inputShape;
    const [kh, kw] = filter.shape;
    const [pt] = forwardPadding(h, kh, strides[0], pad, 1);
    const [pl] = forwardPadding(w, kw, strides[1], pad, 2);
    let g = zeroStuff(dy, strides[0], strides[1]);
    const beforeH = kh - 1 - pt;
    const beforeW = kw - 1 - pl;
    g = padOrCrop(g, 1, beforeH, h + kh - 1 - beforeH - g.shape[1]);
    g = padOrCrop(g, 2, beforeW, w + kw - 1 - beforeW - g.shape[2]);
    const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
    return tf.conv2d(g, flipped, 1, 'valid');
  });
}

/**
 * Where the forward-conv route wins with oneDNN off (measured on 2 cores, batch 16, ResNet-18 stage
 * shapes): TF's Eigen kernel is fine at 16x16 and larger maps, several times slower at 4x4, ~50x slower at 2x2
 * (stride 1); with stride 2 the zero-stuffed forward conv only pays off on the smallest maps.
 * A fixed rule (not run-time autotuning) keeps results bit-for-bit reproducible across runs.
 */
function preferForwardConv(dyShape: number[], strides: [number, number]): boolean {
  if (oneDnnRequested()) return false;
  const area = dyShape[1] * dyShape[2];
  return strides[0] === 1 && strides[1] === 1 ? area <= 64 : area <= 4;
}

/** The attributes tfjs passes to its conv-gradient kernels (`inputShape` or `filterShape`). */
interface ConvGradientAttrs {
  strides: number | [number, number];
  pad: Pad;
  dataFormat: string;
  dimRoundingMode?: string;
  inputShape: number[];
  filterShape: number[];
}

/**
 * Our way of computing one conv gradient, or null to leave the call to TF's kernel. `explicit`:
 * the padding is explicit amounts, which TF's op does not take from tfjs' kernel, so a route must
 * handle it.
 */
type ConvGradientRoute = (inputs: Record<string, tf.Tensor4D>, attrs: ConvGradientAttrs, strides: [number, number], explicit: boolean) => tf.Tensor | null;

/** Replaces a conv-gradient kernel of the tensorflow backend: NHWC calls go to `route` first, the rest and what it declines to TF's kernel. */
function overrideConvGradient(kernelName: string, route: ConvGradientRoute): void {
  replaceKernel(kernelName, originalConvGradients, (original) => (args) => {
    const attrs = args.attrs as unknown as ConvGradientAttrs;
    if (attrs.dataFormat !== 'NHWC' || attrs.dimRoundingMode != null) return original.kernelFunc(args);
    const strides: [number, number] = typeof attrs.strides === 'number' ? [attrs.strides, attrs.strides] : attrs.strides;
    const explicit = typeof attrs.pad !== 'string';
    return route(args.inputs as Record<string, tf.Tensor4D>, attrs, strides, explicit) ?? original.kernelFunc(args);
  });
}

/** Puts TF's own conv-gradient kernels back. */
export function restoreConvGradients(): void {
  restoreKernels(originalConvGradients);
}

/**
 * dL/dW of y = conv2d(x, W) by TF's `Conv2DBackpropFilter` with EXPLICIT padding (any tfjs
 * padding converted to explicit amounts). TF's oneDNN rewrite leaves explicit-padding convs to its
 * Eigen kernel, so this selects that kernel while oneDNN is on.
 */
export function conv2dFilterGradientExplicit(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[], strides: [number, number], pad: Pad): tf.Tensor4D {
  return explicitConvGradient('Conv2DBackpropFilter', x.shape, filterShape, strides, pad, (sizes) => [x, sizes, dy]);
}

/**
 * One of TF's conv-gradient ops with EXPLICIT padding: `sizes` is the shape of what it computes
 * (input or filter), `inputs` orders the op's three inputs around that int32 shape tensor.
 */
function explicitConvGradient(
  op: 'Conv2DBackpropInput' | 'Conv2DBackpropFilter', inputShape: number[], filterShape: number[], strides: [number, number], pad: Pad,
  inputs: (sizes: tf.Tensor1D) => tf.Tensor[],
): tf.Tensor4D {
  const [, h, w] = inputShape;
  const [kh, kw] = filterShape as [number, number];
  const [pt, pb] = forwardPadding(h!, kh, strides[0], pad, 1);
  const [pl, pr] = forwardPadding(w!, kw, strides[1], pad, 2);
  const b = native();
  const int = b.binding.TF_ATTR_INT;
  const sizes = tf.tensor1d(op === 'Conv2DBackpropInput' ? inputShape : filterShape, 'int32');
  try {
    return b.executeSingleOutput(op, [
      floatTypeAttr(b),
      { name: 'strides', type: int, value: [1, strides[0], strides[1], 1] },
      { name: 'use_cudnn_on_gpu', type: b.binding.TF_ATTR_BOOL, value: true },
      { name: 'padding', type: b.binding.TF_ATTR_STRING, value: 'EXPLICIT' },
      { name: 'explicit_paddings', type: int, value: [0, 0, pt, pb, pl, pr, 0, 0] },
      { name: 'data_format', type: b.binding.TF_ATTR_STRING, value: 'NHWC' },
      { name: 'dilations', type: int, value: [1, 1, 1, 1] },
    ], inputs(sizes)) as tf.Tensor4D;
  } finally {
    sizes.dispose();
  }
}

/**
 * Which filter gradients go to TF's Eigen kernel while oneDNN is on: spatial kernels with at
 * least 64 input channels, on hosts where the kernel self-check verified that kernel and timed it
 * at least 5 % faster than oneDNN's over those shapes (on the project's AVX2 host, batch 32:
 * ResNet-18's 3x3 convs 1.15x (14x14x256) to 2x (56x56, stride 2) faster; the 7x7 stem on 3
 * channels 1.9x slower, 16-32-channel 3x3 convs 1.3-2.2x slower, 1x1 convs mostly slower; on an
 * AVX-512 + AMX host oneDNN's was faster: 0.81x). The choice is made per bucket of output map size
 * (`mapBucket` in kernel-check.ts: on an AMD EPYC AVX-512 host Eigen was slower on large maps and
 * up to 7x faster on 7x7 maps and RefConv's 3x3 transform maps). `REFCONV_EIGEN_FILTER_GRADIENT=0|1`
 * forces it off or on for all maps (on only where the kernel passed the check). The choice is
 * cached per host, so runs on one host stay reproducible.
 */
function preferEigenFilterGradient(filterShape: number[], dyShape: number[]): boolean {
  const forced = process.env.REFCONV_EIGEN_FILTER_GRADIENT;
  if (forced === '0') return false;
  if (forced === '1') {
    if (!state.eigenFilterGradientCorrect) warnOnce('REFCONV_EIGEN_FILTER_GRADIENT=1 ignored: TF\'s Eigen filter gradient did not pass the kernel self-check on this CPU');
    if (!state.eigenFilterGradientCorrect) return false;
  } else if (!state.eigenFilterGradientMaps[mapBucket(dyShape[1]! * dyShape[2]!)]) return false;
  const [kh, kw, cin] = filterShape as [number, number, number];
  return oneDnnRequested() && kh * kw > 1 && cin >= 64;
}

/**
 * dL/dx of y = conv2d(x, W) by TF's `Conv2DBackpropInput` with EXPLICIT padding, which TF's
 * oneDNN rewrite leaves to its Eigen kernel.
 */
export function conv2dInputGradientExplicit(dy: tf.Tensor4D, filter: tf.Tensor4D, inputShape: number[], strides: [number, number], pad: Pad): tf.Tensor4D {
  return explicitConvGradient('Conv2DBackpropInput', inputShape, filter.shape, strides, pad, (sizes) => [sizes, filter, dy]);
}

/**
 * The conv-gradient kernels: correctness routes first (they apply whether or not the fast kernels
 * are on), then the speed routes while the fast kernels are on, else TF's own kernel.
 */
export function installConvGradientOverrides(): void {
  overrideConvGradient('Conv2DBackpropInput', ({ dy, filter }, attrs, strides, explicit) => {
    const route = state.routes[isPointwise(filter!.shape) ? 'conv1x1.inputGrad' : 'conv.inputGrad'];
    if (route === 'matmul' && !explicit) return pointwiseInputGradient(dy!, filter!, attrs.inputShape, strides);
    if (route === 'explicit' || (route === 'matmul' && explicit)) return conv2dInputGradientExplicit(dy!, filter!, attrs.inputShape, strides, attrs.pad);
    if (!state.fastKernels) return null;
    return explicit || preferForwardConv(dy!.shape, strides) ? conv2dInputGradient(dy!, filter!, attrs.inputShape, strides, attrs.pad) : null;
  });
  overrideConvGradient('Conv2DBackpropFilter', ({ x, dy }, attrs, strides, explicit) => {
    const route = state.routes[isPointwise(attrs.filterShape) ? 'conv1x1.filterGrad' : 'conv.filterGrad'];
    if (route === 'matmul' && !explicit) return pointwiseFilterGradient(x!, dy!, strides);
    if (route !== undefined) return conv2dFilterGradientExplicit(x!, dy!, attrs.filterShape, strides, attrs.pad);
    if (!state.fastKernels) return null;
    return explicit || preferEigenFilterGradient(attrs.filterShape, dy!.shape) ? conv2dFilterGradientExplicit(x!, dy!, attrs.filterShape, strides, attrs.pad) : null;
  });
}
