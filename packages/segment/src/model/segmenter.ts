/**
 * A segmenter described as plain data ({@link SegmenterSpec}, stored in checkpoints) and
 * built on a @refconv/backbones feature backbone, for one fixed input size: dilated backbone
 * stages bake their space-to-batch paddings in at build time, so a model is built per input
 * size ({@link SizedModels}) and weights are shared by name.
 */
import * as tf from '@tensorflow/tfjs';
import { createModel } from '@refconv/backbones';
import { compileForInference, type InferenceModel } from '@refconv/core';
import { buildSegmenter, type SegArch } from './deeplab.js';

/** Everything needed to rebuild a segmenter (checkpoints store this). */
export interface SegmenterSpec {
  arch: SegArch;
  /** @refconv/backbones architecture name, e.g. `resnet18`, `resnet50`. */
  backbone: string;
  /** Backbone width multiplier (1 = torchvision widths). */
  backboneWidth: number;
  outputStride: 8 | 16;
  numClasses: number;
  /** ASPP / decoder width (256 in the paper). */
  channels: number;
  /** V3+ low-level projection width (48). */
  lowLevelChannels: number;
  /** Dropout after the ASPP projection. */
  dropout: number;
  /** Auxiliary FCN head on C4. */
  aux: boolean;
  /** Layers that are RefConv2D (set after `refocus`), with the refocus options used. */
  refconv?: { mapK: number; aspp: boolean; layers: string[]; grouping?: 'official' | 'per-kernel' | 'full'; frozen?: 'official' | 'transform-only' };
}

/** Creates a feature backbone for an input size; injectable so tests can use a tiny stand-in. */
export type BackboneFactory = (spec: SegmenterSpec, inputSize: [number, number]) => tf.LayersModel;

/** The default factory: `createModel(spec.backbone, { features: true, outputStride, width, inputSize })`. */
export const backbonesFactory: BackboneFactory = (spec, inputSize) =>
  createModel(spec.backbone, { features: true, outputStride: spec.outputStride, width: spec.backboneWidth, inputSize });

/** Builds the (plain, not refocused) segmenter of `spec` for input `[H, W]`. */
export function createSegmenter(spec: SegmenterSpec, inputSize: [number, number], factory: BackboneFactory = backbonesFactory): tf.LayersModel {
  const backbone = factory(spec, inputSize);
  return buildSegmenter({
    arch: spec.arch,
    numClasses: spec.numClasses,
    backbone,
    outputStride: spec.outputStride,
    channels: spec.channels,
    lowLevelChannels: spec.lowLevelChannels,
    dropout: spec.dropout,
    aux: spec.aux,
    inputSize,
  });
}

/** Output 0 (main logits) of a segmenter call, whether it has an aux head or not. */
export function mainLogits(out: tf.Tensor | tf.Tensor[]): tf.Tensor4D {
  return (Array.isArray(out) ? out[0] : out) as tf.Tensor4D;
}

/** Anything with a `predict` like a tfjs model's (a LayersModel or a compiled InferenceModel). */
export interface Predictor {
  predict(x: tf.Tensor): tf.Tensor | tf.Tensor[];
}

/**
 * Plain segmenters of one spec at several input sizes, all holding the same weights (a small
 * LRU cache: sizes beyond `capacity` dispose the least recently used model).
 */
export class SizedModels {
  private readonly models = new Map<string, tf.LayersModel>();
  private readonly compiled = new Map<string, InferenceModel>();
  /**
   * `graph` (default): {@link SizedModels.predictor} compiles each size's model for inference
   * (`compileForInference`: BN folded, TensorFlow's graph runtime, verified against the eager
   * model on this host); `eager`: the tfjs model itself.
   */
  runtime: 'graph' | 'eager' = 'graph';

  /**
   * @param spec plain spec (a refocused model is evaluated through its fused weights).
   * @param weights weights by `originalName` (e.g. from `modelWeights` of a fused model).
   */
  constructor(
    readonly spec: SegmenterSpec,
    private readonly weights: Map<string, { shape: number[]; data: Float32Array }>,
    private readonly factory: BackboneFactory = backbonesFactory,
    private readonly capacity = 4,
  ) {}

  /** The model for input `[h, w]`. */
  get(h: number, w: number): tf.LayersModel {
    const key = `${h}x${w}`;
    let m = this.models.get(key);
    if (m) {
      this.models.delete(key);
      this.models.set(key, m);
      return m;
    }
    m = createSegmenter({ ...this.spec, refconv: undefined }, [h, w], this.factory);
    copyWeights(m, this.weights, `weights for ${key}`);
    this.models.set(key, m);
    if (this.models.size > this.capacity) {
      const [oldKey, old] = this.models.entries().next().value as [string, tf.LayersModel];
      this.models.delete(oldKey);
      old.dispose();
      this.compiled.get(oldKey)?.dispose();
      this.compiled.delete(oldKey);
    }
    return m;
  }

  /** What runs inference for input `[h, w]`: the compiled model (see {@link SizedModels.runtime}) or the tfjs model. */
  async predictor(h: number, w: number): Promise<Predictor> {
    const model = this.get(h, w);
    if (this.runtime === 'eager') return model;
    const key = `${h}x${w}`;
    let c = this.compiled.get(key);
    if (!c) {
      c = await compileForInference(model);
      this.compiled.set(key, c);
    }
    return c;
  }

  /** Frees every model. */
  dispose(): void {
    for (const m of this.models.values()) m.dispose();
    for (const c of this.compiled.values()) c.dispose();
    this.models.clear();
    this.compiled.clear();
  }
}

/** Strictly copies named weights into `model`; errors list missing/unexpected/mis-shaped names. */
export function copyWeights(model: tf.LayersModel, weights: Map<string, { shape: number[]; data: Float32Array }>, source: string): void {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const v of model.weights) {
    const t = weights.get(v.originalName);
    if (!t) {
      problems.push(`missing '${v.originalName}'`);
      continue;
    }
    seen.add(v.originalName);
    if (!tf.util.arraysEqual(t.shape, v.shape as number[])) {
      problems.push(`'${v.originalName}' is [${t.shape}] but the model has [${v.shape}]`);
      continue;
    }
    const value = tf.tensor(t.data, t.shape, 'float32');
    v.write(value);
    value.dispose();
  }
  for (const k of weights.keys()) if (!seen.has(k)) problems.push(`unexpected '${k}'`);
  if (problems.length) throw new Error(`cannot load ${source} into '${model.name}': ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? ` (+${problems.length - 10} more)` : ''}`);
}

/** A model's weights as a name -> array map (the form {@link SizedModels} takes). */
export function weightsOf(model: tf.LayersModel): Map<string, { shape: number[]; data: Float32Array }> {
  return new Map(model.weights.map((v) => [v.originalName, { shape: v.shape as number[], data: v.read().dataSync() as Float32Array }]));
}
