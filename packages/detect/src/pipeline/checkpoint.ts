/**
 * Detector checkpoints on top of @refconv/engine's format: the JSON state's `model` field holds
 * a {@link DetectorDescription} (architecture options, category map, resize, and whether the
 * network is refocused), enough to rebuild the network before loading the weights.
 */
import * as tf from '@tensorflow/tfjs';
import { refocus, type Grouping, type TransformInit } from '@refconv/core';
import { loadCheckpoint, setModelWeights, type Checkpoint } from '@refconv/engine';
import type { CategoryMap } from '../data/dataset.js';
import type { ResizeOptions } from '../data/transforms.js';
import { RetinaNet, type RetinaNetOptions } from '../models/retinanet.js';

/** Which convolutions `--refconv` refocuses. */
export type RefocusScope = 'backbone' | 'all';

/** How a network was refocused (stored so a RefConv checkpoint can be rebuilt). */
export interface RefocusSpec {
  scope: RefocusScope;
  mapK: 1 | 3 | 5;
  grouping?: Grouping;
  init?: TransformInit;
  seed?: number;
}

/** Everything needed to rebuild a detector from a checkpoint. */
export interface DetectorDescription {
  kind: 'retinanet';
  options: RetinaNetOptions;
  categories: CategoryMap;
  resize: ResizeOptions;
  /** Present when the stored weights are those of a refocused (RefConv2D) network. */
  refocus?: RefocusSpec;
}

/** Name of the nested backbone model inside a detector network. */
export function backboneName(model: tf.LayersModel): string {
  const nested = model.layers.filter((l) => l instanceof tf.LayersModel);
  if (nested.length !== 1) throw new Error(`detector '${model.name}': expected one nested backbone model, found ${nested.length}`);
  return nested[0]!.name;
}

/**
 * Refocuses a detector network: every 3x3-or-larger Conv2D / DepthwiseConv2D of the backbone
 * (`scope: 'backbone'`) or of the whole network including FPN and heads (`'all'`).
 */
export function refocusDetector(model: tf.LayersModel, spec: RefocusSpec): tf.LayersModel {
  const prefix = `${backboneName(model)}/`;
  return refocus(model, {
    mapK: spec.mapK,
    grouping: spec.grouping,
    init: spec.init,
    seed: spec.seed,
    select: (layer, path) => {
      if (spec.scope === 'backbone' && !path.startsWith(prefix)) return false;
      const cls = layer.getClassName();
      if (cls !== 'Conv2D' && cls !== 'DepthwiseConv2D') return false;
      return (layer.getWeights()[0]!.shape[0] as number) >= spec.mapK;
    },
  });
}

/** Builds the network a description describes (refocused if it says so), with fresh weights. */
export function buildDetector(desc: DetectorDescription): RetinaNet {
  if (desc.kind !== 'retinanet') throw new Error(`unsupported detector kind '${String(desc.kind)}' (this version builds retinanet)`);
  // Backbone init weights are irrelevant here (the checkpoint overwrites them) and may have moved.
  const { weights: _initWeights, ...backbone } = desc.options.backbone;
  const det = RetinaNet.create({ ...desc.options, backbone });
  return desc.refocus ? det.withModel(refocusDetector(det.model, desc.refocus)) : det;
}

/** Loads a detector checkpoint: rebuilds the network and loads its weights (strict). */
export function loadDetector(file: string): { det: RetinaNet; desc: DetectorDescription; checkpoint: Checkpoint } {
  const checkpoint = loadCheckpoint(file);
  const desc = checkpoint.state.model as unknown as DetectorDescription | undefined;
  if (!desc || desc.kind === undefined || !desc.options || !desc.categories) {
    throw new Error(`checkpoint ${file} holds no detector description (state.model); was it written by @refconv/detect?`);
  }
  const det = buildDetector(desc);
  setModelWeights(det.model, checkpoint.weights, { source: file });
  return { det, desc, checkpoint };
}
