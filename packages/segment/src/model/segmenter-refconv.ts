/**
 * RefConv for segmenters: refocus the backbone's k x k convolutions (optionally the ASPP
 * 3x3 atrous convs too), and rebuild a refocused model from a checkpoint.
 */
import * as tf from '@tensorflow/tfjs';
import { fuse, refConvLayers, refocus } from '@refconv/core';
import { createSegmenter, weightsOf, type BackboneFactory, type SegmenterSpec } from './segmenter.js';

/** Options of {@link refocusSegmenter}. */
export interface SegRefocusOptions {
  /** Refocusing map size (default 3). */
  mapK?: 1 | 3 | 5;
  /** Also refocus the ASPP 3x3 atrous convs (default false). */
  aspp?: boolean;
  /** Transform init (default 'default', the official Kaiming-uniform). */
  init?: 'default' | 'zero';
  /** Transform grouping (default 'official'). */
  grouping?: 'official' | 'per-kernel' | 'full';
  /** What is frozen (default 'official': only the bases). */
  frozen?: 'official' | 'transform-only';
  /** Seed of the transform init. */
  seed?: number;
}

/** Name of the nested backbone model inside a segmenter. */
export function backboneName(model: tf.LayersModel): string {
  const inner = model.layers.find((l) => l instanceof tf.LayersModel);
  if (!inner) throw new Error(`segmenter '${model.name}' has no nested backbone model`);
  return inner.name;
}

const ASPP_ATROUS = /^aspp\.b[1-9]\d*\.conv$/;

/**
 * Returns a new model whose backbone convs with kernel >= 3 (and, with `aspp`, the ASPP
 * 3x3 convs) are RefConv2D layers with the current kernels as frozen bases.
 */
export function refocusSegmenter(model: tf.LayersModel, opts: SegRefocusOptions = {}): { model: tf.LayersModel; layers: string[] } {
  const bb = backboneName(model);
  const mapK = opts.mapK ?? 3;
  const refocused = refocus(model, {
    mapK,
    init: opts.init ?? 'default',
    grouping: opts.grouping,
    frozen: opts.frozen,
    seed: opts.seed,
    select: (layer, path) => {
      const cls = layer.getClassName();
      if (cls !== 'Conv2D' && cls !== 'DepthwiseConv2D') return false;
      const k = (layer.getConfig() as { kernelSize: number[] }).kernelSize[0]!;
      if (k < 3 || k < mapK) return false;
      return path.startsWith(`${bb}/`) || (opts.aspp === true && ASPP_ATROUS.test(path));
    },
  });
  return { model: refocused, layers: refConvLayers(refocused).map((l) => l.name) };
}

/** Rebuilds the model of `spec` at input `[h, w]` (refocused when the spec says so) with fresh weights. */
export function buildFromSpec(spec: SegmenterSpec, inputSize: [number, number], factory?: BackboneFactory): tf.LayersModel {
  const plain = createSegmenter(spec, inputSize, factory);
  if (!spec.refconv) return plain;
  const { model } = refocusSegmenter(plain, { mapK: spec.refconv.mapK as 1 | 3 | 5, aspp: spec.refconv.aspp, grouping: spec.refconv.grouping, frozen: spec.refconv.frozen });
  plain.dispose();
  return model;
}

/**
 * The deployable weights of a trained model: a refocused model is fused first (W_t computed
 * once), so the result loads into the plain segmenter of the same spec.
 */
export function deployWeights(model: tf.LayersModel, spec: SegmenterSpec): Map<string, { shape: number[]; data: Float32Array }> {
  if (!spec.refconv) return weightsOf(model);
  const fused = fuse(model);
  const w = weightsOf(fused);
  fused.dispose();
  return w;
}
