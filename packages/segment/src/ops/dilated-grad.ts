/**
 * Gradients for dilated (atrous) convolutions, which tfjs 4.22 does not have: the registered
 * `Conv2D` gradient and the fused conv's custom gradient all
 * assert `dilations == 1`, so a DeepLab ASPP (rates 6/12/18) or a backbone at output stride
 * 8/16 cannot train.
 *
 * The fix uses the identity TensorFlow itself uses for atrous convolution: a stride-1 conv
 * with dilation r over x equals, phase by phase, an undilated conv over the r x r
 * space-to-batch split of x (`spaceToBatchND` with block r, zero-padded to a multiple of r).
 * The backward pass therefore splits x and dy into phases, runs the stock dilation-1
 * gradient, and merges dx back with `batchToSpaceND`.
 *
 * {@link enableDilatedConvGradients} installs this (idempotent) and routes fused convs with
 * dilation through the unfused op so that the registered gradient applies. It changes global
 * tfjs state, so it belongs in @refconv/core eventually; it lives here until then.
 */
import * as tf from '@tensorflow/tfjs';

type Pair = [number, number];
type PadAttr = 'same' | 'valid' | number | number[][];

function asPair(v: unknown): Pair {
  if (v === undefined || v === null) return [1, 1];
  if (typeof v === 'number') return [v, v];
  const a = v as number[];
  return [a[0] ?? 1, a[1] ?? a[0] ?? 1];
}

function phaseSplit(t: tf.Tensor4D, r: Pair): tf.Tensor4D {
  const [, h, w] = t.shape;
  const ph = (r[0] - (h % r[0])) % r[0];
  const pw = (r[1] - (w % r[1])) % r[1];
  return tf.spaceToBatchND(t, r, [[0, ph], [0, pw]]);
}

function phaseMerge(t: tf.Tensor4D, r: Pair, h: number, w: number): tf.Tensor4D {
  const ph = (r[0] - (h % r[0])) % r[0];
  const pw = (r[1] - (w % r[1])) % r[1];
  return tf.batchToSpaceND(t, r, [[0, ph], [0, pw]]);
}

/**
 * dy of a 'valid' dilated conv, zero-padded to the 'same' output it is a crop of
 * (odd kernels only: the crop is symmetric).
 */
function validToSameDy(dy: tf.Tensor4D, kernel: Pair, r: Pair, kind: string): tf.Tensor4D {
  if (kernel[0] % 2 === 0 || kernel[1] % 2 === 0) {
    throw new Error(`gradient of dilated ${kind} with padding 'valid' needs an odd kernel, got ${kernel[0]}x${kernel[1]}`);
  }
  const eh = ((kernel[0] - 1) * r[0]) / 2;
  const ew = ((kernel[1] - 1) * r[1]) / 2;
  return tf.pad(dy, [[0, 0], [eh, eh], [ew, ew], [0, 0]]);
}

interface GradResult {
  [name: string]: () => tf.Tensor;
}

/** Wraps a stock (dilation-1) gradient so that it also serves dilated stride-1 convs. */
function dilatedGradConfig(kernelName: string, base: tf.GradConfig, kind: string): tf.GradConfig {
  return {
    ...base,
    gradFunc: (dy, saved, attrs) => {
      const a = attrs as unknown as { dilations?: unknown; strides?: unknown; pad: PadAttr; dataFormat?: string };
      const r = asPair(a.dilations);
      if (r[0] === 1 && r[1] === 1) return base.gradFunc(dy, saved, attrs) as GradResult;
      if (a.dataFormat && a.dataFormat !== 'NHWC') throw new Error(`gradient of dilated ${kind}: only NHWC is supported`);
      const s = asPair(a.strides);
      if (s[0] !== 1 || s[1] !== 1) throw new Error(`gradient of dilated ${kind}: strides must be 1 with dilation, got ${s}`);
      if (a.pad !== 'same' && a.pad !== 'valid') throw new Error(`gradient of dilated ${kind}: padding '${String(a.pad)}' is not supported (same/valid only)`);
      const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      const [, h, w] = x.shape;
      const dySame = a.pad === 'valid' ? validToSameDy(dy as tf.Tensor4D, [filter.shape[0], filter.shape[1]], r, kind) : (dy as tf.Tensor4D);
      const xs = phaseSplit(x, r);
      const dys = phaseSplit(dySame, r);
      const inner = base.gradFunc(dys, [xs, filter], { ...attrs, dilations: [1, 1], pad: 'same' } as unknown as tf.NamedAttrMap) as GradResult;
      return {
        x: () => phaseMerge(inner.x!() as tf.Tensor4D, r, h, w),
        filter: () => inner.filter!(),
      };
    },
    kernelName,
  };
}

let installed = false;

/**
 * Installs the dilated `Conv2D` gradient (see module doc). Idempotent. Depthwise convs are not
 * covered: the native backend's DepthwiseConv2dNative kernel rejects dilation even in the
 * forward pass, and tf.layers' DepthwiseConv2D ignores `dilationRate` altogether.
 */
export function enableDilatedConvGradients(): void {
  if (installed) return;
  const base = tf.getGradient('Conv2D');
  if (!base) throw new Error('tfjs has no registered gradient for Conv2D');
  tf.registerGradient(dilatedGradConfig('Conv2D', base, 'conv2d'));
  // Fused convs (used by tf.layers Conv2D) carry their own gradient that rejects dilation:
  // send dilated calls through the unfused ops, whose registered gradients handle it now.
  const fused = tf.fused as unknown as Record<string, (args: Record<string, unknown>) => tf.Tensor>;
  const original = fused.conv2d!;
  fused.conv2d = (args) => {
    const r = asPair(args.dilations);
    if (r[0] === 1 && r[1] === 1) return original(args);
    return tf.tidy(() => {
      const x = args.x as tf.Tensor4D;
      let y: tf.Tensor = tf.conv2d(x, args.filter as tf.Tensor4D, args.strides as Pair, args.pad as 'same', (args.dataFormat as 'NHWC') ?? 'NHWC', r, args.dimRoundingMode as 'round');
      if (args.bias) y = tf.add(y, args.bias as tf.Tensor);
      return applyActivation(y, (args.activation as string) ?? 'linear', args);
    });
  };
  installed = true;
}

function applyActivation(y: tf.Tensor, activation: string, args: Record<string, unknown>): tf.Tensor {
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
      throw new Error(`dilated fused conv: unknown activation '${activation}'`);
  }
}
