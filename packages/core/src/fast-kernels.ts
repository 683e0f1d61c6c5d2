/**
 * Faster training on the native TensorFlow backend.
 *
 * tfjs computes many gradients as chains of small ops (ReLU as Step + Multiply; training-mode
 * batch norm as moments + a dozen elementwise ops forward and backward), and each op is a separate
 * native dispatch with its own temporaries. TensorFlow has fused kernels for exactly these:
 * `FusedBatchNormV3` / `FusedBatchNormGradV3`, `ReluGrad`, `Relu6Grad`. When the backend is
 * `tensorflow`, {@link enableFastKernels} routes
 * - the gradients of Relu and Relu6 to the native grad kernels, and
 * - tf.layers BatchNormalization in training mode (4-D, channels-last) to one fused native forward
 *   op with a custom gradient that is one fused native backward op,
 * - tf.layers ReLU with maxValue 6 (relu then clipByValue, whose gradient is five ops) to the
 *   native Relu6 op,
 * - tf.layers Conv2D with a linear activation and no dilation, while gradients are being recorded, to a plain
 *   `conv2d` (+ bias add) instead of tfjs' fused conv: the fused conv's gradient is a custom
 *   gradient that always computes the input gradient, even where nothing needs it (the stem conv
 *   of every network: ~270 ms of a 5 s ResNet-18 step at 224 px, batch 32); the plain conv's
 *   registered gradient is only evaluated for inputs on the path to a trainable variable,
 * - with oneDNN off, the input gradient of conv2d (`Conv2DBackpropInput`) on small maps to a
 *   forward conv of the (zero-stuffed, for strides > 1) output gradient with the flipped,
 *   transposed kernel: TF's Eigen backprop-input kernel degrades badly as the spatial size shrinks
 *   and channels grow (measured ~1 s for a 2x2x512 map where the forward conv takes ~5 ms). oneDNN's
 *   kernel has no such cliff (it runs the same forward-conv kernel itself), so with oneDNN on only
 *   explicit paddings, which TF's op does not take, use this route,
 * - with oneDNN on, the filter gradient of spatial convs with >= 64 input channels
 *   (`Conv2DBackpropFilter`) to TF's Eigen kernel instead of oneDNN's, by passing the padding as
 *   TF's EXPLICIT padding (TF's oneDNN op rewrite skips explicit-padding convs): on this project's
 *   2-core AVX2 machine Eigen's kernel is 1.15-2x faster for ResNet's 3x3 convs (stride 1 and 2)
 *   and the dense RefConv transforms, while oneDNN's stays faster for the stem (3 input
 *   channels), narrow convs and 1x1 convs,
 * keeping tfjs' semantics (biased batch variance for normalisation, moving averages updated with
 * the layer's momentum). Everything else is untouched. `REFCONV_FAST_KERNELS=0` disables it.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelClass, KernelRoute } from './kernel-check.js';
import { pointwiseConv, pointwiseFilterGradient, pointwiseInputGradient } from './pointwise-matmul.js';

/** The parts of tfjs-node's backend we call (not in tfjs' public typings). */
interface NativeBackend {
  binding: { TF_ATTR_FLOAT: number; TF_ATTR_STRING: number; TF_ATTR_BOOL: number; TF_ATTR_TYPE: number; TF_ATTR_INT: number; TF_FLOAT: number };
  executeSingleOutput(name: string, attrs: unknown[], inputs: tf.Tensor[]): tf.Tensor;
  executeMultipleOutputs(name: string, attrs: unknown[], inputs: tf.Tensor[], numOutputs: number): tf.Tensor[];
}

let enabled = false;
/**
 * Correctness routes from the kernel self-check (kernel-check.ts): kernel classes whose native
 * oneDNN kernel failed on this host, and the verified route to use instead. Unlike the speed
 * routes they stay in force when the fast kernels are off.
 */
let correctnessRoutes: Partial<Record<KernelClass, KernelRoute>> = {};
/** Whether the self-check verified the Eigen (EXPLICIT padding) filter gradient on this host. */
let eigenFilterGradientVerified = false;
let forwardOverridden = false;
const originalForwardKernels = new Map<string, tf.KernelConfig>();
let originalBnCall: ((inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor) | null = null;
let originalReluGrad: tf.GradConfig | undefined;
let originalRelu6Grad: tf.GradConfig | undefined;
/** TF's own conv-gradient kernels replaced by {@link overrideConvGradient}, by kernel name. */
const originalConvGradients = new Map<string, tf.KernelConfig>();
let originalReluLayerCall: ((inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor) | null = null;
let convCallPatched = false;

type LayerCall = (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor;

/** The fields of a tf.layers Conv2D that its call reads (not in tfjs' public typings). */
interface ConvLike {
  rank: number;
  dataFormat: string;
  padding: 'same' | 'valid';
  strides: [number, number];
  dilationRate: [number, number];
  activation: { getClassName(): string };
  kernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
}

function conv2dLayerProto(): { call: LayerCall } {
  return Object.getPrototypeOf(tf.layers.conv2d({ filters: 1, kernelSize: 1 })) as { call: LayerCall };
}

/** Whether a gradient tape is recording (inside tf.grad / optimizer.minimize). */
function recordingGradients(): boolean {
  return (tf.engine().state as unknown as { gradientDepth: number }).gradientDepth > 0;
}

function patchConvLayer(): void {
  if (convCallPatched) return;
  const proto = conv2dLayerProto();
  const inherited = proto.call;
  proto.call = function patchedConvCall(this: ConvLike, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) {
    const plain = recordingGradients() && this.rank === 2 && this.dataFormat === 'channelsLast' && this.activation.getClassName() === 'linear'
      && this.dilationRate.every((d) => d === 1);
    if (!plain) return inherited.call(this as never, inputs, kwargs);
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    return tf.tidy(() => {
      const y = tf.conv2d(x, this.kernel.read() as tf.Tensor4D, this.strides, this.padding, 'NHWC');
      return this.bias ? tf.add(y, this.bias.read()) : y;
    });
  };
  convCallPatched = true;
}

function restoreConvLayer(): void {
  if (!convCallPatched) return;
  // Conv2D inherits call from tfjs-layers' Conv; removing the own property restores it.
  delete (conv2dLayerProto() as { call?: LayerCall }).call;
  convCallPatched = false;
}

function reluLayerProto(): { call: typeof originalReluLayerCall } {
  return Object.getPrototypeOf(tf.layers.reLU({})) as { call: typeof originalReluLayerCall };
}

function patchReluLayer(): void {
  if (originalReluLayerCall) return;
  const proto = reluLayerProto();
  originalReluLayerCall = proto.call;
  const original = originalReluLayerCall as NonNullable<typeof originalReluLayerCall>;
  proto.call = function patchedReluCall(this: { maxValue?: number | null }, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) {
    if (this.maxValue !== 6) return original.call(this as never, inputs, kwargs);
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor;
    return tf.relu6(x);
  };
}

function native(): NativeBackend {
  return tf.backend() as unknown as NativeBackend;
}

function floatTypeAttr(b: NativeBackend) {
  return { name: 'T', type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT };
}

/** Native ReluGrad / Relu6Grad: dy where the saved input is in the active range, else 0. */
function nativeActivationGrad(op: 'ReluGrad' | 'Relu6Grad', kernelName: string): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: ['x'],
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [x] = saved;
      return { x: () => native().executeSingleOutput(op, [floatTypeAttr(native())], [dy as tf.Tensor, x]) };
    },
  };
}

function bnAttrs(b: NativeBackend, epsilon: number, training: boolean) {
  return [
    floatTypeAttr(b),
    { name: 'U', type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT },
    { name: 'epsilon', type: b.binding.TF_ATTR_FLOAT, value: epsilon },
    { name: 'exponential_avg_factor', type: b.binding.TF_ATTR_FLOAT, value: 1 },
    { name: 'data_format', type: b.binding.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'is_training', type: b.binding.TF_ATTR_BOOL, value: training },
  ];
}

/**
 * Training-mode batch norm of a 4-D NHWC tensor as one native op, with a one-op native gradient.
 * `onStats(mean, biasedVariance)` receives the batch statistics (for the moving averages).
 */
export function fusedBatchNormTraining(
  x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number,
  onStats?: (mean: tf.Tensor1D, variance: tf.Tensor1D) => void,
): tf.Tensor4D {
  const f = tf.customGrad(((xx: tf.Tensor, g: tf.Tensor, bb: tf.Tensor, save: tf.GradSaveFunc) => {
    const b = native();
    const empty = tf.tensor1d([], 'float32');
    const [y, batchMean, batchVar, r1, r2, r3] = b.executeMultipleOutputs(
      'FusedBatchNormV3', bnAttrs(b, epsilon, true), [xx, g, bb, empty, empty], 6,
    );
    empty.dispose();
    if (onStats) {
      // TF reports the Bessel-corrected variance; tfjs' BN moving average uses the biased one.
      const n = xx.size / (xx.shape[3] as number);
      const biased = tf.mul(batchVar, n > 1 ? (n - 1) / n : 1) as tf.Tensor1D;
      onStats(batchMean as tf.Tensor1D, biased);
      biased.dispose();
    }
    batchMean.dispose();
    batchVar.dispose();
    save([xx, g, r1, r2, r3]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sg, s1, s2, s3] = saved;
        const nb = native();
        const [dx, dg, db, e1, e2] = nb.executeMultipleOutputs(
          'FusedBatchNormGradV3', bnAttrs(nb, epsilon, true).filter((a) => a.name !== 'exponential_avg_factor'), [dy, sx, sg, s1, s2, s3], 5,
        );
        e1.dispose();
        e2.dispose();
        return [dx, dg, db];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x, gamma, beta) as tf.Tensor4D;
}

interface BatchNormLike {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: tf.LayerVariable;
  beta: tf.LayerVariable;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
}

function patchBatchNormalization(): void {
  const proto = Object.getPrototypeOf(tf.layers.batchNormalization({})) as { call: typeof originalBnCall };
  if (originalBnCall) return;
  originalBnCall = proto.call;
  const original = originalBnCall as NonNullable<typeof originalBnCall>;
  proto.call = function patchedCall(this: BatchNormLike, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor;
    const fast = kwargs?.training === true && x.rank === 4 && (this.axis === -1 || this.axis === 3) && this.center && this.scale && x.dtype === 'float32';
    if (!fast) return original.call(this as never, inputs, kwargs);
    return tf.tidy(() => {
      const updateMovingAverages = (mean: tf.Tensor1D, variance: tf.Tensor1D) => {
        tf.tidy(() => {
          const decay = 1 - this.momentum;
          for (const [v, value] of [[this.movingMean, mean], [this.movingVariance, variance]] as const) {
            const orig = v.read();
            v.write(tf.sub(orig, tf.mul(tf.sub(orig, value), decay)));
          }
        });
      };
      return fusedBatchNormTraining(x as tf.Tensor4D, this.gamma.read() as tf.Tensor1D, this.beta.read() as tf.Tensor1D, this.epsilon, updateMovingAverages);
    });
  };
}

type Pad = 'same' | 'valid' | number | number[][];

/** [before, after] padding of the forward conv along one spatial axis (TF 'SAME' semantics). */
function forwardPadding(len: number, k: number, stride: number, pad: Pad, axis: 1 | 2): [number, number] {
  if (pad === 'valid') return [0, 0];
  if (typeof pad === 'number') return [pad, pad];
  if (Array.isArray(pad)) return [pad[axis][0], pad[axis][1]];
  const out = Math.ceil(len / stride);
  const total = Math.max((out - 1) * stride + k - len, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

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

/** Whether TF's oneDNN CPU kernels are requested (TF reads the variable at its first op; it accepts 1/true/yes/on). */
export function oneDnnRequested(): boolean {
  return ['1', 'true', 'yes', 'on'].includes((process.env.TF_ENABLE_ONEDNN_OPTS ?? '').toLowerCase());
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
  if (originalConvGradients.has(kernelName)) return;
  const original = tf.getKernel(kernelName, 'tensorflow');
  if (!original) return;
  originalConvGradients.set(kernelName, original);
  tf.unregisterKernel(kernelName, 'tensorflow');
  tf.registerKernel({
    ...original,
    kernelFunc: (args) => {
      const attrs = args.attrs as unknown as ConvGradientAttrs;
      if (attrs.dataFormat !== 'NHWC' || attrs.dimRoundingMode != null) return original.kernelFunc(args);
      const strides: [number, number] = typeof attrs.strides === 'number' ? [attrs.strides, attrs.strides] : attrs.strides;
      const explicit = typeof attrs.pad !== 'string';
      return route(args.inputs as Record<string, tf.Tensor4D>, attrs, strides, explicit) ?? original.kernelFunc(args);
    },
  });
}

function restoreConvGradients(): void {
  for (const [name, original] of originalConvGradients) {
    tf.unregisterKernel(name, 'tensorflow');
    tf.registerKernel(original);
  }
  originalConvGradients.clear();
}

/**
 * dL/dW of y = conv2d(x, W) by TF's `Conv2DBackpropFilter` with EXPLICIT padding (any tfjs
 * padding converted to explicit amounts). TF's oneDNN rewrite leaves explicit-padding convs to its
 * Eigen kernel, so this selects that kernel while oneDNN is on.
 */
export function conv2dFilterGradientExplicit(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[], strides: [number, number], pad: Pad): tf.Tensor4D {
  const [, h, w] = x.shape;
  const [kh, kw] = filterShape as [number, number];
  const [pt, pb] = forwardPadding(h, kh, strides[0], pad, 1);
  const [pl, pr] = forwardPadding(w, kw, strides[1], pad, 2);
  const b = native();
  const int = b.binding.TF_ATTR_INT;
  const sizes = tf.tensor1d(filterShape, 'int32');
  try {
    return b.executeSingleOutput('Conv2DBackpropFilter', [
      floatTypeAttr(b),
      { name: 'strides', type: int, value: [1, strides[0], strides[1], 1] },
      { name: 'use_cudnn_on_gpu', type: b.binding.TF_ATTR_BOOL, value: true },
      { name: 'padding', type: b.binding.TF_ATTR_STRING, value: 'EXPLICIT' },
      { name: 'explicit_paddings', type: int, value: [0, 0, pt, pb, pl, pr, 0, 0] },
      { name: 'data_format', type: b.binding.TF_ATTR_STRING, value: 'NHWC' },
      { name: 'dilations', type: int, value: [1, 1, 1, 1] },
    ], [x, sizes, dy]) as tf.Tensor4D;
  } finally {
    sizes.dispose();
  }
}

/**
 * Which filter gradients go to TF's Eigen kernel while oneDNN is on: spatial kernels with at
 * least 64 input channels (measured per shape on 2 cores, batch 32: ResNet-18's 3x3 convs 1.15x
 * (14x14x256) to 2x (56x56, stride 2) faster than oneDNN's; the 7x7 stem on 3 channels 1.9x
 * slower, 16-32-channel 3x3 convs 1.3-2.2x slower, 1x1 convs mostly slower). A fixed rule keeps
 * results reproducible run to run.
 */
function preferEigenFilterGradient(filterShape: number[]): boolean {
  // Measured on AVX2 only: where oneDNN has AVX-512 kernels it may win everywhere, so the choice
  // can be switched off (REFCONV_EIGEN_FILTER_GRADIENT=0) and re-measured with core:bench-conv.
  if (process.env.REFCONV_EIGEN_FILTER_GRADIENT === '0' || !eigenFilterGradientVerified) return false;
  const [kh, kw, cin] = filterShape as [number, number, number];
  return oneDnnRequested() && kh * kw > 1 && cin >= 64;
}

/**
 * Switches on the fused native kernels described in the module comment. Only has an effect on
 * the `tensorflow` backend; idempotent. Returns whether the fast path is active.
 */
export function enableFastKernels(): boolean {
  if (enabled) return true;
  if (tf.getBackend() !== 'tensorflow' || process.env.REFCONV_FAST_KERNELS === '0') return false;
  originalReluGrad = tf.getGradient('Relu');
  originalRelu6Grad = tf.getGradient('Relu6');
  tf.registerGradient(nativeActivationGrad('ReluGrad', 'Relu'));
  tf.registerGradient(nativeActivationGrad('Relu6Grad', 'Relu6'));
  patchBatchNormalization();
  patchReluLayer();
  enabled = true;
  installConvGradientOverrides();
  patchConvLayer();
  return true;
}

const isPointwise = (shape: number[]) => shape[0] === 1 && shape[1] === 1;

/**
 * The conv-gradient kernels: correctness routes first (they apply whether or not the fast kernels
 * are on), then the speed routes while the fast kernels are on, else TF's own kernel.
 */
function installConvGradientOverrides(): void {
  overrideConvGradient('Conv2DBackpropInput', ({ dy, filter }, attrs, strides, explicit) => {
    const route = correctnessRoutes[isPointwise(filter!.shape) ? 'conv1x1.inputGrad' : 'conv.inputGrad'];
    if (route === 'matmul' && !explicit) return pointwiseInputGradient(dy!, filter!, attrs.inputShape, strides);
    if (route === 'explicit' || (route === 'matmul' && explicit)) return conv2dInputGradientExplicit(dy!, filter!, attrs.inputShape, strides, attrs.pad);
    if (!enabled) return null;
    return explicit || preferForwardConv(dy!.shape, strides) ? conv2dInputGradient(dy!, filter!, attrs.inputShape, strides, attrs.pad) : null;
  });
  overrideConvGradient('Conv2DBackpropFilter', ({ x, dy }, attrs, strides, explicit) => {
    const route = correctnessRoutes[isPointwise(attrs.filterShape) ? 'conv1x1.filterGrad' : 'conv.filterGrad'];
    if (route === 'matmul' && !explicit) return pointwiseFilterGradient(x!, dy!, strides);
    if (route !== undefined) return conv2dFilterGradientExplicit(x!, dy!, attrs.filterShape, strides, attrs.pad);
    if (!enabled) return null;
    return explicit || preferEigenFilterGradient(attrs.filterShape) ? conv2dFilterGradientExplicit(x!, dy!, attrs.filterShape, strides, attrs.pad) : null;
  });
}

/** The attributes tfjs passes to Conv2D / FusedConv2D. */
interface ConvForwardAttrs {
  strides: number | [number, number];
  pad: Pad;
  dataFormat: string;
  dilations: number | [number, number];
  dimRoundingMode?: string;
  activation?: string;
  leakyreluAlpha?: number;
}

/** Replaces Conv2D and FusedConv2D so that 1x1 convs (NHWC, no dilation) run as MatMul. */
function overrideForwardPointwise(): void {
  if (forwardOverridden) return;
  for (const kernelName of ['Conv2D', 'FusedConv2D']) {
    const original = tf.getKernel(kernelName, 'tensorflow');
    if (!original) continue;
    originalForwardKernels.set(kernelName, original);
    tf.unregisterKernel(kernelName, 'tensorflow');
    tf.registerKernel({
      ...original,
      kernelFunc: (args) => {
        const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, tf.Tensor4D>;
        const a = args.attrs as unknown as ConvForwardAttrs;
        const dilations = typeof a.dilations === 'number' ? [a.dilations, a.dilations] : a.dilations ?? [1, 1];
        const applies = correctnessRoutes['conv1x1.forward'] === 'matmul' && a.dataFormat === 'NHWC' && a.dimRoundingMode == null
          && typeof a.pad === 'string' && dilations.every((d) => d === 1) && isPointwise(filter!.shape);
        if (!applies) return original.kernelFunc(args);
        const strides: [number, number] = typeof a.strides === 'number' ? [a.strides, a.strides] : a.strides;
        const y = pointwiseConv(x!, filter!, strides);
        if (kernelName === 'Conv2D') return y;
        const biased = bias ? tf.add(y, bias) : y;
        if (biased !== y) y.dispose();
        const be = args.backend as unknown as { applyActivation(x: tf.Tensor, act?: string, prelu?: tf.Tensor, alpha?: number): tf.Tensor };
        const out = be.applyActivation(biased, a.activation, preluActivationWeights, a.leakyreluAlpha);
        if (out !== biased) biased.dispose();
        return out;
      },
    });
  }
  forwardOverridden = true;
}

function restoreForwardKernels(): void {
  for (const [name, original] of originalForwardKernels) {
    tf.unregisterKernel(name, 'tensorflow');
    tf.registerKernel(original);
  }
  originalForwardKernels.clear();
  forwardOverridden = false;
}

/**
 * Applies the kernel self-check's verdict on the `tensorflow` backend: routes the kernel classes
 * whose oneDNN kernel failed to their verified alternative, and allows the Eigen filter-gradient
 * speed route only where it was verified. Call after the backend is set; idempotent.
 */
export function applyKernelPlan(plan: { routes: Partial<Record<KernelClass, KernelRoute>>; eigenFilterGradient: boolean }): void {
  correctnessRoutes = { ...plan.routes };
  eigenFilterGradientVerified = plan.eigenFilterGradient;
  if (tf.getBackend() !== 'tensorflow') return;
  if (Object.keys(correctnessRoutes).length > 0) installConvGradientOverrides();
  if (correctnessRoutes['conv1x1.forward'] === 'matmul') overrideForwardPointwise();
  else restoreForwardKernels();
}

/** The correctness routes in force (see {@link applyKernelPlan}). */
export function activeKernelRoutes(): Partial<Record<KernelClass, KernelRoute>> {
  return { ...correctnessRoutes };
}

/**
 * dL/dx of y = conv2d(x, W) by TF's `Conv2DBackpropInput` with EXPLICIT padding, which TF's
 * oneDNN rewrite leaves to its Eigen kernel.
 */
export function conv2dInputGradientExplicit(dy: tf.Tensor4D, filter: tf.Tensor4D, inputShape: number[], strides: [number, number], pad: Pad): tf.Tensor4D {
  const [, h, w] = inputShape;
  const [kh, kw] = filter.shape;
  const [pt, pb] = forwardPadding(h!, kh, strides[0], pad, 1);
  const [pl, pr] = forwardPadding(w!, kw, strides[1], pad, 2);
  const b = native();
  const int = b.binding.TF_ATTR_INT;
  const sizes = tf.tensor1d(inputShape, 'int32');
  try {
    return b.executeSingleOutput('Conv2DBackpropInput', [
      floatTypeAttr(b),
      { name: 'strides', type: int, value: [1, strides[0], strides[1], 1] },
      { name: 'use_cudnn_on_gpu', type: b.binding.TF_ATTR_BOOL, value: true },
      { name: 'padding', type: b.binding.TF_ATTR_STRING, value: 'EXPLICIT' },
      { name: 'explicit_paddings', type: int, value: [0, 0, pt, pb, pl, pr, 0, 0] },
      { name: 'data_format', type: b.binding.TF_ATTR_STRING, value: 'NHWC' },
      { name: 'dilations', type: int, value: [1, 1, 1, 1] },
    ], [sizes, filter, dy]) as tf.Tensor4D;
  } finally {
    sizes.dispose();
  }
}

/** Restores tfjs' own gradients and batch-norm implementation (used by tests to compare). */
export function disableFastKernels(): void {
  if (!enabled) return;
  if (originalReluGrad) tf.registerGradient(originalReluGrad);
  if (originalRelu6Grad) tf.registerGradient(originalRelu6Grad);
  if (originalBnCall) {
    const proto = Object.getPrototypeOf(tf.layers.batchNormalization({})) as { call: typeof originalBnCall };
    proto.call = originalBnCall;
    originalBnCall = null;
  }
  enabled = false;
  // The correctness routes stay: they are what makes this host's kernels right.
  if (Object.keys(correctnessRoutes).length === 0) restoreConvGradients();
  restoreConvLayer();
  if (originalReluLayerCall) {
    reluLayerProto().call = originalReluLayerCall;
    originalReluLayerCall = null;
  }
  enabled = false;
}

/** Whether {@link enableFastKernels} is active. */
export function fastKernelsEnabled(): boolean {
  return enabled;
}
