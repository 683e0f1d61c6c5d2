/**
 * The RefConv math, functional form.
 *
 * A conv kernel W_b (the frozen *basis*) is viewed as an image of N = Cin*Cout (or C*mult for
 * a depthwise conv) channels of size K x K. A small *refocusing transform* T, a mapK x mapK
 * convolution with stride 1 and 'same' zero padding over that image, gives the kernel the layer
 * actually uses: W_t = W_b + T * W_b. Because W_b is frozen, W_t is a linear function of T only;
 * after training it is computed once and the layer is a plain conv again.
 *
 * Layouts (tfjs, channels last):
 *   basis     [K, K, Cin, Cout] (regular) or [K, K, C, mult] (depthwise), exactly tfjs kernels
 *   transform [mapK, mapK, N, 1]  per-kernel maps (G = N): each 2-D kernel has its own filter
 *             [mapK, mapK, N, N]  dense map (G = 1): every kernel channel mixes all the others
 *             [mapK, mapK, N/G, N] G contiguous groups (1 < G < N), the HWIO form of PyTorch's
 *                                  grouped convmap weight [N, N/G, mapK, mapK]
 * Kernel channel c of the basis image is the tfjs flatten order of the last two kernel dims:
 * c = i * Cout + o for a regular conv, c = ch * mult + m for a depthwise conv.
 *
 * The official PyTorch code uses G = Cin * Cout / g^2 groups: per-kernel for regular convs (g = 1),
 * dense for depthwise convs (g = C, multiplier 1) and G = multiplier for depthwise convs with a
 * channel multiplier; {@link Grouping} 'official' reproduces that choice. For depthwise kernels the
 * tfjs channel order equals PyTorch's, so contiguous groups mean the same kernels in both.
 */
import * as tf from '@tensorflow/tfjs';
import { nativePerKernelRefocus } from './kernels/refconv-ops.js';

/**
 * How kernel channels are grouped in the refocusing transform.
 * - `official`: the official code's G = Cin*Cout/g^2 (per-kernel for regular, dense for depthwise convs)
 * - `per-kernel`: G = N, one mapK x mapK filter per 2-D kernel
 * - `full`: G = 1, a dense N -> N map (only sensible for small layers: N^2 * mapK^2 parameters)
 */
export type Grouping = 'official' | 'per-kernel' | 'full';

/** Initialisation of the transform. `default` = PyTorch's Conv2d default (Kaiming-uniform, a = sqrt 5), as the official code; `zero` starts exactly at the pretrained model. */
export type TransformInit = 'default' | 'zero';

/** Padding of the convolution with the refocused kernel: tfjs modes, one symmetric amount, or explicit [[top, bottom], [left, right]]. */
export type RefConvPadding = 'same' | 'valid' | number | [[number, number], [number, number]];

/** Shape facts about a conv kernel that the transform depends on. */
export interface KernelGeometry {
  /** Spatial size K of the (square) kernel. */
  kernelSize: number;
  /** Input channels of the conv. */
  inChannels: number;
  /** Kernel's last dimension: Cout for a regular conv, the channel multiplier for a depthwise conv. */
  outPerGroup: number;
  /** Whether the conv is depthwise (groups = Cin). */
  depthwise: boolean;
}

/** Number of 2-D kernels N = channels of the basis image. */
export function kernelChannels(g: KernelGeometry): number {
  return g.inChannels * g.outPerGroup;
}

/** Number of groups G of the transform for this kernel (N = per-kernel, 1 = dense). */
export function transformGroups(grouping: Grouping, g: KernelGeometry): number {
  const n = kernelChannels(g);
  if (grouping === 'per-kernel') return n;
  if (grouping === 'full') return 1;
  // official: G = Cin * Cout / groups^2
  return g.depthwise ? g.outPerGroup : n;
}

/** Shape of the transform weight for a kernel (see the module comment for the layout). */
export function transformShape(g: KernelGeometry, mapK: number, grouping: Grouping): [number, number, number, number] {
  const n = kernelChannels(g);
  const groups = transformGroups(grouping, g);
  if (groups === n) return [mapK, mapK, n, 1];
  return [mapK, mapK, n / groups, n];
}

/** Fan-in of one output channel of the transform (N/G * mapK^2), as PyTorch computes it for Conv2d init. */
export function transformFanIn(g: KernelGeometry, mapK: number, grouping: Grouping): number {
  return (kernelChannels(g) / transformGroups(grouping, g)) * mapK * mapK;
}

/**
 * Checks that a kernel can be refocused with a mapK transform; throws a message that names
 * `where` (usually the layer name) and the problem.
 */
export function validateRefocus(where: string, g: KernelGeometry, mapK: number): void {
  const k = g.kernelSize;
  if (![1, 3, 5, 7].includes(mapK) && !(Number.isInteger(mapK) && mapK % 2 === 1 && mapK > 0)) {
    throw new Error(`${where}: map_k must be a positive odd integer (1, 3, 5), got ${mapK}`);
  }
  if (!Number.isInteger(k) || k < 1) throw new Error(`${where}: kernel size must be a positive integer, got ${k}`);
  if (k % 2 === 0) throw new Error(`${where}: RefConv needs an odd kernel size, got ${k}x${k}`);
  if (mapK > k) throw new Error(`${where}: map_k (${mapK}) is larger than the kernel (${k}x${k})`);
}

/**
 * The basis image's mapK x mapK patches as a [K*K, mapK*mapK*N] matrix (im2col with 'same' zero
 * padding, stride 1): row p = kernel position, column (dy * mapK + dx) * N + c = channel c of the
 * image at position p shifted by (dy - mapK//2, dx - mapK//2). That column order is the row order
 * of a [mapK, mapK, N, N] transform reshaped to [mapK*mapK*N, N], so a dense transform is one
 * MatMul of these columns with the reshaped transform.
 *
 * It depends on the basis only, which is frozen, so a layer computes it once per basis value
 * ({@link RefConv2D} caches it); it holds K^2 * mapK^2 * N floats (81 N for 3x3 over 3x3).
 *
 * @param basis [K, K, Cin, Cout] or [K, K, C, mult]
 */
export function basisColumns(basis: tf.Tensor4D, mapK: number): tf.Tensor2D {
  const [k, k2, a, b] = basis.shape;
  const n = a * b;
  if (k !== k2) throw new Error(`basisColumns: basis must be square, got ${k}x${k2}`);
  if (!(Number.isInteger(mapK) && mapK % 2 === 1 && mapK > 0 && mapK <= k)) throw new Error(`basisColumns: map_k must be an odd integer no larger than the ${k}x${k} kernel, got ${mapK}`);
  return tf.tidy(() => {
    const p = (mapK - 1) / 2;
    const padded = tf.pad(tf.reshape(basis, [1, k, k, n]), [[0, 0], [p, p], [p, p], [0, 0]]);
    const shifted: tf.Tensor[] = [];
    for (let dy = 0; dy < mapK; dy++) for (let dx = 0; dx < mapK; dx++) shifted.push(tf.slice(padded, [0, dy, dx, 0], [1, k, k, n]));
    return tf.reshape(shifted.length === 1 ? shifted[0]! : tf.concat(shifted, 3), [k * k, mapK * mapK * n]) as tf.Tensor2D;
  });
}

/**
 * W_t = W_b + Transform(W_b).
 *
 * A dense transform (G = 1, the official choice for depthwise convs) is computed as a MatMul of
 * the basis' patch columns ({@link basisColumns}) with the transform, the same sums as the
 * convolution: a conv over a K x K "image" with batch 1 is a poor fit for the conv kernels (its
 * filter gradient, a [mapK^2 N, N] outer product summed over K^2 positions, took 2.8x the time of
 * the MatMul form, `tf.matMul(columns, dy, true)`, for MobileNetV2's transforms on an AVX-512
 * EPYC: 31.5 against 11.2 ms per step, `nx run bench:transforms`).
 *
 * @param basis [K, K, Cin, Cout] or [K, K, C, mult]
 * @param transform [mapK, mapK, N, 1] (per-kernel) or [mapK, mapK, N, N] (dense), N = product of the basis' last two dims
 * @param columns `basisColumns(basis, mapK)` when the caller has it cached (used for dense transforms only)
 * @returns the refocused kernel, same shape as `basis`
 */
export function refocusKernel(basis: tf.Tensor4D, transform: tf.Tensor4D, columns?: tf.Tensor2D): tf.Tensor4D {
  const [k, k2, a, b] = basis.shape;
  const n = a * b;
  const [m, m2, tn, tOut] = transform.shape;
  if (k !== k2) throw new Error(`refocusKernel: basis must be square, got ${k}x${k2}`);
  if (m !== m2 || m % 2 === 0 || m > k) throw new Error(`refocusKernel: transform must be an odd square map no larger than the kernel, got ${m}x${m2} for a ${k}x${k} kernel`);
  const perKernel = tOut === 1 && tn === n;
  if (!perKernel && !(tOut === n && n % tn === 0)) {
    throw new Error(`refocusKernel: transform shape [${transform.shape}] does not fit a basis with N=${n} kernels (expected [${m},${m},${n},1], [${m},${m},${n},${n}] or [${m},${m},N/G,${n}])`);
  }
  const groups = perKernel ? n : n / tn;
  return tf.tidy(() => {
    let refocused: tf.Tensor;
    if (groups === 1) {
      const cols = columns ?? basisColumns(basis, m);
      if (cols.shape[0] !== k * k || cols.shape[1] !== m * m * n) throw new Error(`refocusKernel: columns must have shape [${k * k}, ${m * m * n}], got [${cols.shape}]`);
      refocused = tf.matMul(cols, tf.reshape(transform, [m * m * n, n]));
    } else if (perKernel) {
      // Per-kernel maps are a depthwise conv over the basis image: on RefConv's own kernel where
      // the self-check chose it (TF's depthwise kernels are slow for a K x K map of ~10^5 channels).
      const image = tf.reshape(basis, [1, k, k, n]) as tf.Tensor4D;
      const route = nativePerKernelRefocus();
      refocused = route ? route(image, transform) : tf.depthwiseConv2d(image, transform, 1, 'same');
    } else {
      // G contiguous groups: tfjs has no grouped conv, so convolve each slice of kernels.
      const images = tf.split(tf.reshape(basis, [1, k, k, n]) as tf.Tensor4D, groups, 3);
      const filters = tf.split(transform, groups, 3);
      refocused = tf.concat(images.map((im, i) => tf.conv2d(im as tf.Tensor4D, filters[i] as tf.Tensor4D, 1, 'same')), 3);
    }
    return tf.add(basis, tf.reshape(refocused, basis.shape)) as tf.Tensor4D;
  });
}

/** Options of {@link refConv2d}. */
export interface RefConv2DOpOptions {
  /** Stride, one number or [sh, sw]. Default 1. */
  strides?: number | [number, number];
  /** Default 'same'. */
  padding?: RefConvPadding;
  /** Dilation, one number or [dh, dw]. Default 1. */
  dilations?: number | [number, number];
  /** True when the basis is a depthwise kernel [K, K, C, mult]. */
  depthwise?: boolean;
  /** Optional bias [Cout] (or [C*mult] for depthwise). */
  bias?: tf.Tensor1D;
}

function tfPadding(p: RefConvPadding): 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]] {
  if (p === 'same' || p === 'valid') return p;
  if (typeof p === 'number') return [[0, 0], [p, p], [p, p], [0, 0]];
  return [[0, 0], p[0], p[1], [0, 0]];
}

/** Convolves `x` with the refocused kernel (the training-time forward of a RefConv layer). */
export function refConv2d(x: tf.Tensor4D, basis: tf.Tensor4D, transform: tf.Tensor4D, opts: RefConv2DOpOptions = {}): tf.Tensor4D {
  return tf.tidy(() => {
    const kernel = refocusKernel(basis, transform);
    return convWithKernel(x, kernel, opts);
  });
}

/** A plain conv with an explicit kernel, sharing the option handling of {@link refConv2d}. */
export function convWithKernel(x: tf.Tensor4D, kernel: tf.Tensor4D, opts: RefConv2DOpOptions = {}): tf.Tensor4D {
  const strides = opts.strides ?? 1;
  const dilations = opts.dilations ?? 1;
  const pad = tfPadding(opts.padding ?? 'same');
  const [dh, dw] = typeof dilations === 'number' ? [dilations, dilations] : dilations;
  checkKernelFits(x.shape, kernel.shape[0], kernel.shape[1], opts.padding ?? 'same', [dh, dw]);
  return tf.tidy(() => {
    let y: tf.Tensor4D;
    if (dh > 1 || dw > 1) y = dilatedConv2d(x, kernel, strides, opts.padding ?? 'same', [dh, dw], opts.depthwise ?? false);
    else if (opts.depthwise) y = tf.depthwiseConv2d(x, kernel, strides, pad, 'NHWC', dilations);
    else y = tf.conv2d(x, kernel, strides, pad, 'NHWC', dilations);
    if (opts.bias) y = tf.add(y, opts.bias);
    return y;
  });
}

/**
 * Throws, as PyTorch does, when the dilated kernel is larger than the padded input: the output
 * would be empty, and TF's oneDNN conv kernels return a wrongly shaped tensor for that case.
 */
function checkKernelFits(xShape: number[], kh: number, kw: number, padding: RefConvPadding, [dh, dw]: [number, number]): void {
  const [, h, w] = xShape as [number, number, number];
  const [pt, pb] = convPadding(h, kh, 1, dh, padding, 0);
  const [pl, pr] = convPadding(w, kw, 1, dw, padding, 1);
  const ekh = (kh - 1) * dh + 1;
  const ekw = (kw - 1) * dw + 1;
  if (h + pt + pb < ekh || w + pl + pr < ekw) {
    throw new Error(`conv: input ${h}x${w} (padded ${h + pt + pb}x${w + pl + pr}) is smaller than the ${kh}x${kw} kernel with dilation (${dh}, ${dw}) (${ekh}x${ekw})`);
  }
}

/** [before, after] padding along one axis for a conv with TF semantics. */
export function convPadding(len: number, k: number, stride: number, dilation: number, padding: RefConvPadding, axis: 0 | 1): [number, number] {
  if (padding === 'valid') return [0, 0];
  if (typeof padding === 'number') return [padding, padding];
  if (Array.isArray(padding)) return padding[axis];
  const dk = (k - 1) * dilation + 1;
  const out = Math.ceil(len / stride);
  const total = Math.max((out - 1) * stride + dk - len, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/**
 * A conv (regular or depthwise) with dilation > 1, computed as TensorFlow's own
 * `with_space_to_batch` does (space-to-batch, undilated conv, batch-to-space). tfjs has no gradient
 * for dilated convs and the native TF CPU depthwise kernel rejects dilations, so this keeps
 * dilated (DeepLab-style) RefConv layers trainable. Stride must be 1, as for any dilated conv in TF.
 */
export function dilatedConv2d(
  x: tf.Tensor4D, kernel: tf.Tensor4D, strides: number | [number, number], padding: RefConvPadding, [dh, dw]: [number, number], depthwise: boolean,
): tf.Tensor4D {
  const [sh, sw] = typeof strides === 'number' ? [strides, strides] : strides;
  if (sh !== 1 || sw !== 1) throw new Error(`conv: dilation (${dh}, ${dw}) with stride (${sh}, ${sw}) is not supported; use stride 1 with dilation`);
  return tf.tidy(() => {
    const [, h, w] = x.shape;
    const k = kernel.shape[0];
    const [pt, pb] = convPadding(h, k, 1, dh, padding, 0);
    const [pl, pr] = convPadding(w, k, 1, dw, padding, 1);
    const eh = (dh - ((h + pt + pb) % dh)) % dh;
    const ew = (dw - ((w + pl + pr) % dw)) % dw;
    const s2b = tf.spaceToBatchND(x, [dh, dw], [[pt, pb + eh], [pl, pr + ew]]) as tf.Tensor4D;
    const y = depthwise ? tf.depthwiseConv2d(s2b, kernel, 1, 'valid') : tf.conv2d(s2b, kernel, 1, 'valid');
    return tf.batchToSpaceND(y, [dh, dw], [[0, eh], [0, ew]]) as tf.Tensor4D;
  });
}

type FusedConvArgs = Record<string, unknown>;

function applyActivation(y: tf.Tensor, activation: string, args: FusedConvArgs): tf.Tensor {
  switch (activation) {
    case 'linear':
      return y;
    case 'relu':
      return tf.relu(y);
    case 'relu6':
      return tf.relu6(y);
    case 'elu':
      return tf.elu(y);
    case 'sigmoid':
      return tf.sigmoid(y);
    case 'leakyrelu':
      return tf.leakyRelu(y, (args.leakyreluAlpha as number) ?? 0.2);
    case 'prelu':
      return tf.prelu(y, args.preluActivationWeights as tf.Tensor);
    default:
      throw new Error(`dilated conv: unknown fused activation '${activation}'`);
  }
}

const asPair = (v: unknown): [number, number] => (v === undefined || v === null ? [1, 1] : typeof v === 'number' ? [v, v] : [(v as number[])[0] ?? 1, (v as number[])[1] ?? (v as number[])[0] ?? 1]);

let dilatedLayersEnabled = false;

/**
 * Makes dilated (atrous) tf.layers convolutions trainable, with the mechanism RefConv2D layers
 * already use: tfjs 4.22 has no gradient for dilated convs (the registered `Conv2D` gradient and
 * the fused conv's custom gradient both assert `dilations == 1`), so a DeepLab ASPP (rates
 * 6/12/18) or a backbone at output stride 8/16 could not train. After this call every dilated
 * stride-1 conv that goes through `tf.fused.conv2d` (tf.layers Conv2D with `dilationRate`) is
 * computed by {@link dilatedConv2d}: space-to-batch, an undilated conv, batch-to-space (what
 * TensorFlow's own atrous conv does), whose gradient is the composition of those ops' registered
 * gradients; bias and activation follow as in the fused op. Undilated convs are untouched.
 * Idempotent; changes global tfjs state (like `enableFastKernels`).
 */
export function enableDilatedConvGradients(): void {
  if (dilatedLayersEnabled) return;
  const fused = tf.fused as unknown as Record<string, (args: FusedConvArgs) => tf.Tensor>;
  const original = fused.conv2d!;
  fused.conv2d = (args) => {
    const r = asPair(args.dilations);
    if (r[0] === 1 && r[1] === 1) return original(args);
    if (args.dataFormat !== undefined && args.dataFormat !== 'NHWC') throw new Error(`dilated conv: only NHWC is supported, got ${String(args.dataFormat)}`);
    return tf.tidy(() => {
      const x = args.x as tf.Tensor;
      const x4 = (x.rank === 3 ? tf.expandDims(x, 0) : x) as tf.Tensor4D;
      let y: tf.Tensor = dilatedConv2d(x4, args.filter as tf.Tensor4D, asPair(args.strides), args.pad as RefConvPadding, r, false);
      if (args.bias) y = tf.add(y, args.bias as tf.Tensor);
      y = applyActivation(y, (args.activation as string) ?? 'linear', args);
      return x.rank === 3 ? tf.squeeze(y, [0]) : y;
    });
  };
  dilatedLayersEnabled = true;
}
