/**
 * The few layers torchvision backbones need that tfjs-layers lacks. All are parameter-free,
 * registered for serialization under the package name `refconv` (so `model.save` /
 * `tf.loadLayersModel` and the config rewrites of `refocus` / `fuse` rebuild them), and built
 * from ops that have gradients in tfjs (see shared/notes/tfjs-gradients.md).
 */
import * as tf from '@tensorflow/tfjs';
import type { LayerArgs } from '@tensorflow/tfjs-layers/dist/engine/topology.js';

type Shape = (number | null)[];

function single(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(inputs) ? inputs[0]! : inputs;
}

function singleShape(shape: tf.Shape | tf.Shape[]): Shape {
  return (Array.isArray(shape[0]) ? shape[0] : shape) as Shape;
}

/** Registration namespace: class names in saved configs read `refconv>HardSwish` etc. */
export const LAYER_PACKAGE = 'refconv';

/**
 * `x * relu6(x + 3) / 6` with a hand-written gradient: dx = dy * (relu6(x + 3) + x * 1[-3 < x < 3]) / 6.
 * tfjs' automatic gradient of the four forward ops takes six full-size elementwise passes plus
 * casts; this one takes four, with `x * 1[-3 < x < 3]` computed by the registered Relu6 gradient
 * (one native `Relu6Grad` on the TensorFlow backend). MobileNetV3 applies it to most activations.
 */
export function hardSwish(x: tf.Tensor): tf.Tensor {
  const f = tf.customGrad(((xx: tf.Tensor, save: tf.GradSaveFunc) => {
    const shifted = tf.add(xx, 3);
    const gate = tf.relu6(shifted);
    save([xx, shifted, gate]);
    return {
      value: tf.mul(tf.mul(xx, gate), 1 / 6),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sShifted, sGate] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const inside = relu6Gradient(sx, sShifted); // x where 0 < x + 3 < 6, else 0
        return tf.mul(tf.mul(dy, tf.add(sGate, inside)), 1 / 6);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x) as tf.Tensor;
}

/** `dy * 1[0 < x < 6]` through whatever gradient is registered for Relu6 (native where available). */
function relu6Gradient(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  const grad = tf.getGradient('Relu6');
  if (!grad) return tf.mul(dy, tf.cast(tf.logicalAnd(tf.greater(x, 0), tf.less(x, 6)), 'float32'));
  return (grad.gradFunc(dy, [x], {}) as { x: () => tf.Tensor }).x();
}

/** `x * relu6(x + 3) / 6`, PyTorch's `nn.Hardswish` (gradient: {@link hardSwish}). */
export class HardSwish extends tf.layers.Layer {
  static className = 'HardSwish';
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => hardSwish(single(inputs)));
  }
}
tf.serialization.registerClass(HardSwish, LAYER_PACKAGE);

/** `relu6(x + 3) / 6`, PyTorch's `nn.Hardsigmoid` (not Keras' `hard_sigmoid`, which is 0.2x + 0.5). */
export class HardSigmoid extends tf.layers.Layer {
  static className = 'HardSigmoid';
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.div(tf.relu6(tf.add(single(inputs), 3)), 6));
  }
}
tf.serialization.registerClass(HardSigmoid, LAYER_PACKAGE);

/** Arguments of {@link ChannelShuffle}. */
export interface ChannelShuffleArgs extends LayerArgs {
  /** Number of groups (ShuffleNet uses 2). Channels must divide evenly. */
  groups: number;
}

/**
 * ShuffleNet's channel shuffle, as torchvision's `channel_shuffle`: channels viewed as
 * [groups, C/groups], transposed, flattened; output channel j*groups + g = input channel g*(C/groups) + j.
 */
export class ChannelShuffle extends tf.layers.Layer {
  static className = 'ChannelShuffle';
  readonly groups: number;
  constructor(args: ChannelShuffleArgs) {
    super(args);
    if (!(Number.isInteger(args.groups) && args.groups > 0)) throw new Error(`ChannelShuffle '${this.name}': groups must be a positive integer, got ${args.groups}`);
    this.groups = args.groups;
  }
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = singleShape(inputShape);
    const c = s[s.length - 1];
    if (c !== null && c !== undefined && c % this.groups !== 0) {
      throw new Error(`ChannelShuffle '${this.name}': ${c} channels do not split into ${this.groups} groups`);
    }
    return s;
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs) as tf.Tensor4D;
      const [b, h, w, c] = x.shape;
      const grouped = tf.reshape(x, [b, h, w, this.groups, c / this.groups]);
      return tf.reshape(tf.transpose(grouped, [0, 1, 2, 4, 3]), [b, h, w, c]);
    });
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), groups: this.groups };
  }
}
tf.serialization.registerClass(ChannelShuffle, LAYER_PACKAGE);

/** Arguments of {@link ChannelSlice}. */
export interface ChannelSliceArgs extends LayerArgs {
  /** First channel kept. */
  start: number;
  /** Number of channels kept. */
  size: number;
}

/** Keeps channels [start, start + size) of an NHWC tensor (one half of torch's `x.chunk(2, dim=1)`). */
export class ChannelSlice extends tf.layers.Layer {
  static className = 'ChannelSlice';
  readonly start: number;
  readonly size: number;
  constructor(args: ChannelSliceArgs) {
    super(args);
    if (!(Number.isInteger(args.start) && args.start >= 0 && Number.isInteger(args.size) && args.size > 0)) {
      throw new Error(`ChannelSlice '${this.name}': need integer start >= 0 and size > 0, got start=${args.start} size=${args.size}`);
    }
    this.start = args.start;
    this.size = args.size;
  }
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = [...singleShape(inputShape)];
    const c = s[s.length - 1];
    if (c !== null && c !== undefined && this.start + this.size > c) {
      throw new Error(`ChannelSlice '${this.name}': channels [${this.start}, ${this.start + this.size}) exceed the input's ${c}`);
    }
    s[s.length - 1] = this.size;
    return s;
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs);
      const begin = x.shape.map((_, i) => (i === x.rank - 1 ? this.start : 0));
      const size = x.shape.map((d, i) => (i === x.rank - 1 ? this.size : d));
      return tf.slice(x, begin, size);
    });
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), start: this.start, size: this.size };
  }
}
tf.serialization.registerClass(ChannelSlice, LAYER_PACKAGE);

/** Arguments of {@link ChannelZeroPad}. */
export interface ChannelZeroPadArgs extends LayerArgs {
  /** Zero channels added before the existing ones. */
  before: number;
  /** Zero channels added after. */
  after: number;
}

/**
 * Adds all-zero channels: the parameter-free "option A" shortcut of the CIFAR ResNets
 * (He et al. 2016, section 4.2), `F.pad(x, (0, 0, 0, 0, before, after))` in PyTorch.
 */
export class ChannelZeroPad extends tf.layers.Layer {
  static className = 'ChannelZeroPad';
  readonly before: number;
  readonly after: number;
  constructor(args: ChannelZeroPadArgs) {
    super(args);
    if (!(Number.isInteger(args.before) && args.before >= 0 && Number.isInteger(args.after) && args.after >= 0)) {
      throw new Error(`ChannelZeroPad '${this.name}': before/after must be non-negative integers, got ${args.before}/${args.after}`);
    }
    this.before = args.before;
    this.after = args.after;
  }
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = [...singleShape(inputShape)];
    const c = s[s.length - 1];
    s[s.length - 1] = c === null || c === undefined ? null : c + this.before + this.after;
    return s;
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs);
      const pads = x.shape.map((_, i): [number, number] => (i === x.rank - 1 ? [this.before, this.after] : [0, 0]));
      return tf.pad(x, pads);
    });
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), before: this.before, after: this.after };
  }
}
tf.serialization.registerClass(ChannelZeroPad, LAYER_PACKAGE);

/** Arguments of {@link SpaceToBatch}. */
export interface SpaceToBatchArgs extends LayerArgs {
  /** Dilation rate d: the block size. */
  block: number;
  /** [[top, bottom], [left, right]] zero padding applied first (bottom/right include the round-up to a multiple of `block`). */
  paddings: [[number, number], [number, number]];
}

/**
 * First half of a dilated ("atrous") convolution computed as a plain one, as TensorFlow's
 * `with_space_to_batch` does: pad, then move each of the d x d sub-lattices into the batch.
 * A stride-1 conv with dilation d equals SpaceToBatch(d) -> conv (dilation 1, 'valid') ->
 * BatchToSpace(d). We need it because tfjs has no gradient for dilated Conv2D / DepthwiseConv2D,
 * while SpaceToBatchND / BatchToSpaceND are differentiable; and the conv between them stays a
 * plain, refocusable Conv2D / DepthwiseConv2D with the PyTorch parameter name.
 */
export class SpaceToBatch extends tf.layers.Layer {
  static className = 'SpaceToBatch';
  readonly block: number;
  readonly paddings: [[number, number], [number, number]];
  constructor(args: SpaceToBatchArgs) {
    super(args);
    if (!(Number.isInteger(args.block) && args.block >= 1)) throw new Error(`SpaceToBatch '${this.name}': block must be a positive integer, got ${args.block}`);
    this.block = args.block;
    this.paddings = [[args.paddings[0][0], args.paddings[0][1]], [args.paddings[1][0], args.paddings[1][1]]];
  }
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const [b, h, w, c] = singleShape(inputShape);
    const d = this.block;
    const side = (len: number | null | undefined, p: [number, number]) => {
      if (len === null || len === undefined) return null;
      const padded = len + p[0] + p[1];
      if (padded % d !== 0) throw new Error(`SpaceToBatch '${this.name}': padded size ${padded} is not a multiple of the block ${d}`);
      return padded / d;
    };
    return [b === null || b === undefined ? null : b * d * d, side(h, this.paddings[0]), side(w, this.paddings[1]), c ?? null];
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.spaceToBatchND(single(inputs), [this.block, this.block], this.paddings));
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), block: this.block, paddings: this.paddings };
  }
}
tf.serialization.registerClass(SpaceToBatch, LAYER_PACKAGE);

/** Arguments of {@link BatchToSpace}. */
export interface BatchToSpaceArgs extends LayerArgs {
  /** The block size used by the matching {@link SpaceToBatch}. */
  block: number;
  /** [[top, bottom], [left, right]] rows/columns cropped after reassembly. */
  crops: [[number, number], [number, number]];
}

/** Second half of a dilated convolution: the inverse of {@link SpaceToBatch}, then a crop. */
export class BatchToSpace extends tf.layers.Layer {
  static className = 'BatchToSpace';
  readonly block: number;
  readonly crops: [[number, number], [number, number]];
  constructor(args: BatchToSpaceArgs) {
    super(args);
    if (!(Number.isInteger(args.block) && args.block >= 1)) throw new Error(`BatchToSpace '${this.name}': block must be a positive integer, got ${args.block}`);
    this.block = args.block;
    this.crops = [[args.crops[0][0], args.crops[0][1]], [args.crops[1][0], args.crops[1][1]]];
  }
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const [b, h, w, c] = singleShape(inputShape);
    const d = this.block;
    const side = (len: number | null | undefined, cr: [number, number]) => (len === null || len === undefined ? null : len * d - cr[0] - cr[1]);
    return [b === null || b === undefined ? null : b / (d * d), side(h, this.crops[0]), side(w, this.crops[1]), c ?? null];
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.batchToSpaceND(single(inputs), [this.block, this.block], this.crops));
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), block: this.block, crops: this.crops };
  }
}
tf.serialization.registerClass(BatchToSpace, LAYER_PACKAGE);
