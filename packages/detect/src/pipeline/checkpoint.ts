/**
 * Detector checkpoints on top of @refconv/engine's format: the JSON state's `model` field holds
 * a {@link DetectorDescription} (architecture options, category map, resize, and whether the
 * network is refocused), enough to rebuild the network before loading the weights.
 */
import * as tf from '@tensorflow/tfjs';
import { refocus, type Grouping, type TransformInit } from '@refconv/core';
import { loadCheckpoint, modelWeights, setModelWeights, type Checkpoint } from '@refconv/engine';
import type { SafeTensor, SafeTensorInput } from '@refconv/core';
import type { CategoryMap } from '../data/dataset.js';
import type { ResizeOptions } from '../data/transforms.js';
import type { Detector } from '../models/detector.js';
import { FasterRCNN, type FasterRCNNOptions } from '../models/fasterrcnn.js';
import { RetinaNet, type RetinaNetOptions } from '../models/retinanet.js';

/** Which convolutions `--refconv` refocuses. */
export type RefocusScope = 'backbone' | 'all';

/** How a network was refocused (stored so a RefConv checkpoint can be rebuilt). */
export interface RefocusSpec {
  scope: RefocusScope;
  mapK: 1 | 3 | 5;
  grouping?: Grouping;
  init?: TransformInit;
  /** What is frozen: the bases (`official`, default) or everything but the transforms. */
  frozen?: 'official' | 'transform-only';
  seed?: number;
}

/** Everything needed to rebuild a detector from a checkpoint. */
export type DetectorDescription = {
  categories: CategoryMap;
  resize: ResizeOptions;
  /** Present when the stored weights are those of a refocused (RefConv2D) network. */
  refocus?: RefocusSpec;
} & ({ kind: 'retinanet'; options: RetinaNetOptions } | { kind: 'fasterrcnn'; options: FasterRCNNOptions });

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
    frozen: spec.frozen,
    seed: spec.seed,
    select: (layer, path) => {
      if (spec.scope === 'backbone' && !path.startsWith(prefix)) return false;
      const cls = layer.getClassName();
      if (cls !== 'Conv2D' && cls !== 'DepthwiseConv2D') return false;
      return (layer.getWeights()[0]!.shape[0] as number) >= spec.mapK;
    },
  });
}

/** Builds a fresh detector of the described kind (not refocused). */
export function createDetector(desc: DetectorDescription): Detector {
  if (desc.kind === 'retinanet') return RetinaNet.create(desc.options);
  if (desc.kind === 'fasterrcnn') return FasterRCNN.create(desc.options);
  throw new Error(`unsupported detector kind '${String((desc as { kind: unknown }).kind)}' (retinanet, fasterrcnn)`);
}

/** Builds the network a description describes (refocused if it says so), with fresh weights. */
export function buildDetector(desc: DetectorDescription): Detector {
  // Backbone init weights are irrelevant here (the checkpoint overwrites them) and may have moved.
  const { weights: _initWeights, ...backbone } = desc.options.backbone;
  const det = createDetector({ ...desc, options: { ...desc.options, backbone } } as DetectorDescription);
  return desc.refocus ? det.withModel(refocusDetector(det.model, desc.refocus)) : det;
}

/** All weights of a detector's parts by name. */
export function detectorWeights(det: Detector): Record<string, SafeTensorInput> {
  const out: Record<string, SafeTensorInput> = {};
  for (const part of det.parts()) {
    for (const [name, t] of Object.entries(modelWeights(part))) {
      if (out[name]) throw new Error(`detector weights: '${name}' appears in two parts`);
      out[name] = t;
    }
  }
  return out;
}

/** Loads named weights into every part (strict: nothing missing, nothing left over). */
export function setDetectorWeights(det: Detector, weights: Map<string, SafeTensor>, source: string): void {
  const used = new Set<string>();
  for (const part of det.parts()) {
    const names = new Set(part.weights.map((w) => w.originalName));
    const mine = new Map([...weights].filter(([n]) => names.has(n)));
    setModelWeights(part, mine, { source });
    for (const n of mine.keys()) used.add(n);
  }
  const extra = [...weights.keys()].filter((n) => !used.has(n));
  if (extra.length) throw new Error(`${source}: ${extra.length} weight(s) not used by the detector: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', ...' : ''}`);
}

/** Loads a detector checkpoint: rebuilds the network and loads its weights (strict). */
export function loadDetector(file: string, optionOverrides: Record<string, unknown> = {}): { det: Detector; desc: DetectorDescription; checkpoint: Checkpoint } {
  const checkpoint = loadCheckpoint(file);
  const stored = checkpoint.state.model as unknown as DetectorDescription | undefined;
  if (!stored || stored.kind === undefined || !stored.options || !stored.categories) {
    throw new Error(`checkpoint ${file} holds no detector description (state.model); was it written by @refconv/detect?`);
  }
  const desc = { ...stored, options: { ...stored.options, ...optionOverrides } } as DetectorDescription;
  const det = buildDetector(desc);
  setDetectorWeights(det, checkpoint.weights, file);
  return { det, desc, checkpoint };
}
