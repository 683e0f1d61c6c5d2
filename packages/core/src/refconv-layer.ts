/**
 * `RefConv2D`: a tfjs-layers layer holding a frozen basis kernel and a trainable refocusing
 * transform (see refconv-op.ts for the math and weight layouts). Serializable and registered,
 * so `model.save` / `tf.loadLayersModel` round-trip a refocused model in the tfjs format.
 */
import * as tf from '@tensorflow/tfjs';
import type { LayerArgs } from '@tensorflow/tfjs-layers/dist/engine/topology.js';
import {
  type Grouping,
  type KernelGeometry,
  type TransformInit,
  basisColumns,
  convWithKernel,
  refocusKernel,
  transformFanIn,
  transformGroups,
  transformShape,
  validateRefocus,
} from './refconv-op.js';

type Pair = [number, number];

/** Constructor arguments of {@link RefConv2D}; names follow tfjs-layers' Conv2D / DepthwiseConv2D. */
export interface RefConv2DArgs extends LayerArgs {
  /** Square kernel size K (a number or [K, K]). */
  kernelSize: number | Pair;
  /** Output channels of a regular conv (ignored when `depthwise`). */
  filters?: number;
  /** Depthwise conv (groups = input channels), as tf.layers.depthwiseConv2d. Default false. */
  depthwise?: boolean;
  /** Channel multiplier of a depthwise conv. Default 1. */
  depthMultiplier?: number;
  /** Default 1. */
  strides?: number | Pair;
  /** Default 'valid', as tfjs-layers. */
  padding?: 'same' | 'valid';
  /** Default 1. */
  dilationRate?: number | Pair;
  /** Default true, as tfjs-layers. */
  useBias?: boolean;
  /** Activation name understood by tf.layers.activation (default linear). */
  activation?: string;
  /** Size of the refocusing map (1, 3 or 5). Default 3. */
  mapK?: number;
  /** Grouping of the transform. Default 'official'. */
  grouping?: Grouping;
  /** Transform initialisation. Default 'default' (PyTorch's Kaiming-uniform, as the official code). */
  transformInit?: TransformInit;
  /** Seed for the 'default' init. */
  seed?: number;
  /** Whether the bias trains (false under refocus's 'transform-only' scope). Default true. */
  trainBias?: boolean;
}

function pair(v: number | Pair | undefined, dflt: number, what: string, layer: string): Pair {
  const p: Pair = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!p.every((x) => Number.isInteger(x) && x > 0)) throw new Error(`RefConv2D '${layer}': ${what} must be positive integers, got ${JSON.stringify(v)}`);
  return p;
}

/** Output length of a conv along one axis, as tfjs-layers computes it. */
function convOutputLength(len: number | null, k: number, padding: 'same' | 'valid', stride: number, dilation: number): number | null {
  if (len === null) return null;
  const dk = k + (k - 1) * (dilation - 1);
  const out = padding === 'same' ? len : len - dk + 1;
  return Math.floor((out + stride - 1) / stride);
}

/**
 * A convolution whose kernel is `basis + Transform(basis)`: `basis` is the pretrained kernel
 * (non-trainable), `transform` the trainable refocusing map, `bias` when `useBias`. tfjs lists
 * trainable weights before non-trainable ones in `getWeights()`, so address them by name with
 * {@link RefConv2D.getBasis} / {@link RefConv2D.setBasis} and friends rather than by position.
 */
export class RefConv2D extends tf.layers.Layer {
  /** @nocollapse */
  static className = 'RefConv2D';

  readonly kernelSize: Pair;
  readonly filters: number | undefined;
  readonly depthwise: boolean;
  readonly depthMultiplier: number;
  readonly strides: Pair;
  readonly padding: 'same' | 'valid';
  readonly dilationRate: Pair;
  readonly useBias: boolean;
  readonly activationName: string;
  readonly mapK: number;
  readonly grouping: Grouping;
  readonly transformInit: TransformInit;
  readonly seed: number | undefined;
  readonly trainBias: boolean;

  private basis: tf.LayerVariable | null = null;
  private transform: tf.LayerVariable | null = null;
  private bias: tf.LayerVariable | null = null;
  private activationLayer: tf.layers.Layer | null = null;
  private geometry: KernelGeometry | null = null;
  /** `basisColumns` of the current basis value (dense transforms), keyed by the variable's data id, which changes on every write. */
  private columnsCache: { dataId: object; columns: tf.Tensor2D } | null = null;

  constructor(args: RefConv2DArgs) {
    super(args);
    const name = this.name;
    this.kernelSize = pair(args.kernelSize, 0, 'kernelSize', name);
    if (this.kernelSize[0] !== this.kernelSize[1]) {
      throw new Error(`RefConv2D '${name}': only square kernels are supported, got ${this.kernelSize[0]}x${this.kernelSize[1]}`);
    }
    this.depthwise = args.depthwise ?? false;
    this.depthMultiplier = args.depthMultiplier ?? 1;
    this.filters = this.depthwise ? undefined : args.filters;
    if (!this.depthwise && !(Number.isInteger(this.filters) && (this.filters as number) > 0)) {
      throw new Error(`RefConv2D '${name}': filters must be a positive integer for a regular conv, got ${args.filters}`);
    }
    if (!(Number.isInteger(this.depthMultiplier) && this.depthMultiplier > 0)) {
      throw new Error(`RefConv2D '${name}': depthMultiplier must be a positive integer, got ${args.depthMultiplier}`);
    }
    this.strides = pair(args.strides, 1, 'strides', name);
    this.dilationRate = pair(args.dilationRate, 1, 'dilationRate', name);
    this.padding = args.padding ?? 'valid';
    if (this.padding !== 'same' && this.padding !== 'valid') {
      throw new Error(`RefConv2D '${name}': padding must be 'same' or 'valid', got ${JSON.stringify(args.padding)}`);
    }
    this.useBias = args.useBias ?? true;
    this.activationName = args.activation ?? 'linear';
    this.mapK = args.mapK ?? 3;
    this.grouping = args.grouping ?? 'official';
    if (!['official', 'per-kernel', 'full'].includes(this.grouping)) {
      throw new Error(`RefConv2D '${name}': grouping must be official, per-kernel or full, got ${JSON.stringify(args.grouping)}`);
    }
    this.transformInit = args.transformInit ?? 'default';
    if (this.transformInit !== 'default' && this.transformInit !== 'zero') {
      throw new Error(`RefConv2D '${name}': transformInit must be 'default' or 'zero', got ${JSON.stringify(args.transformInit)}`);
    }
    this.seed = args.seed;
    this.trainBias = args.trainBias ?? true;
    validateRefocus(`RefConv2D '${name}'`, { kernelSize: this.kernelSize[0], inChannels: 1, outPerGroup: 1, depthwise: this.depthwise }, this.mapK);
    if (this.activationName !== 'linear') {
      this.activationLayer = tf.layers.activation({ activation: this.activationName as never, name: `${name}_activation` });
    }
    this.inputSpec = [{ ndim: 4 }];
  }

  /** Number of output channels. */
  outChannels(inChannels: number): number {
    return this.depthwise ? inChannels * this.depthMultiplier : (this.filters as number);
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const cin = shape[3];
    if (cin === null || cin === undefined) throw new Error(`RefConv2D '${this.name}': the channel dimension of the input must be known, got shape [${shape}]`);
    const k = this.kernelSize[0];
    this.geometry = { kernelSize: k, inChannels: cin, outPerGroup: this.depthwise ? this.depthMultiplier : (this.filters as number), depthwise: this.depthwise };
    const basisShape = [k, k, cin, this.geometry.outPerGroup];
    this.basis = this.addWeight('basis', basisShape, 'float32', tf.initializers.zeros(), undefined, false);
    const tShape = transformShape(this.geometry, this.mapK, this.grouping);
    const bound = 1 / Math.sqrt(transformFanIn(this.geometry, this.mapK, this.grouping));
    const init = this.transformInit === 'zero'
      ? tf.initializers.zeros()
      : tf.initializers.randomUniform({ minval: -bound, maxval: bound, seed: this.seed });
    this.transform = this.addWeight('transform', tShape, 'float32', init, undefined, true);
    if (this.useBias) {
      this.bias = this.addWeight('bias', [this.outChannels(cin)], 'float32', tf.initializers.zeros(), undefined, this.trainBias);
    }
    this.inputSpec = [{ ndim: 4, axes: { [-1]: cin } }];
    this.built = true;
  }

  private variable(which: 'basis' | 'transform' | 'bias'): tf.LayerVariable {
    const v = which === 'basis' ? this.basis : which === 'transform' ? this.transform : this.bias;
    if (!v) throw new Error(`RefConv2D '${this.name}' ${this.built ? `has no ${which}` : 'is not built yet'}`);
    return v;
  }

  private assign(which: 'basis' | 'transform' | 'bias', value: tf.Tensor): void {
    const v = this.variable(which);
    if (value.shape.join(',') !== v.shape.join(',')) {
      throw new Error(`RefConv2D '${this.name}': ${which} must have shape [${v.shape}], got [${value.shape}]`);
    }
    v.write(value);
  }

  /** The frozen basis kernel (a copy-free read of the variable). */
  getBasis(): tf.Tensor4D { return this.variable('basis').read() as tf.Tensor4D; }
  /** The trainable refocusing transform. */
  getTransform(): tf.Tensor4D { return this.variable('transform').read() as tf.Tensor4D; }
  /** The bias, or null when the layer has none. */
  getBias(): tf.Tensor1D | null { return this.bias ? (this.bias.read() as tf.Tensor1D) : null; }
  /** Sets the basis (e.g. to a pretrained kernel). */
  setBasis(value: tf.Tensor): void { this.assign('basis', value); }
  /** Sets the transform. */
  setTransform(value: tf.Tensor): void { this.assign('transform', value); }
  /** Sets the bias. */
  setBias(value: tf.Tensor): void { this.assign('bias', value); }

  /** The kernel the layer convolves with: basis + Transform(basis). */
  refocusedKernel(): tf.Tensor4D {
    if (!this.basis || !this.transform || !this.geometry) throw new Error(`RefConv2D '${this.name}' is not built yet`);
    const basis = this.basis.read() as tf.Tensor4D;
    const dense = transformGroups(this.grouping, this.geometry) === 1;
    return refocusKernel(basis, this.transform.read() as tf.Tensor4D, dense ? this.columns(basis) : undefined);
  }

  /** The basis' patch columns for a dense transform, computed once per basis value (the basis is frozen, so once per model load). */
  private columns(basis: tf.Tensor4D): tf.Tensor2D {
    const dataId = (basis as unknown as { dataId: object }).dataId;
    if (this.columnsCache?.dataId !== dataId) {
      this.columnsCache?.columns.dispose();
      this.columnsCache = { dataId, columns: tf.keep(basisColumns(basis, this.mapK)) };
    }
    return this.columnsCache.columns;
  }

  override dispose(): ReturnType<tf.layers.Layer["dispose"]> {
    this.columnsCache?.columns.dispose();
    this.columnsCache = null;
    return super.dispose();
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      let y: tf.Tensor = convWithKernel(x, this.refocusedKernel(), {
        strides: this.strides,
        padding: this.padding,
        dilations: this.dilationRate,
        depthwise: this.depthwise,
        bias: this.bias ? (this.bias.read() as tf.Tensor1D) : undefined,
      });
      if (this.activationLayer) y = this.activationLayer.apply(y) as tf.Tensor;
      return y;
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const k = this.kernelSize[0];
    const h = convOutputLength(s[1], k, this.padding, this.strides[0], this.dilationRate[0]);
    const w = convOutputLength(s[2], k, this.padding, this.strides[1], this.dilationRate[1]);
    const cin = s[3] as number;
    return [s[0], h, w, this.outChannels(cin)];
  }

  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = {
      kernelSize: this.kernelSize,
      depthwise: this.depthwise,
      depthMultiplier: this.depthMultiplier,
      strides: this.strides,
      padding: this.padding,
      dilationRate: this.dilationRate,
      useBias: this.useBias,
      activation: this.activationName,
      mapK: this.mapK,
      grouping: this.grouping,
      transformInit: this.transformInit,
    };
    if (this.filters !== undefined) config.filters = this.filters;
    if (this.seed !== undefined) config.seed = this.seed;
    if (!this.trainBias) config.trainBias = false;
    return { ...super.getConfig(), ...config };
  }
}
tf.serialization.registerClass(RefConv2D);

/** Factory in the tfjs-layers style: `refConv2d({ kernelSize: 3, filters: 64, mapK: 3 })`. */
export function refConv2dLayer(args: RefConv2DArgs): RefConv2D {
  return new RefConv2D(args);
}
