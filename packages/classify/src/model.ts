/**
 * Model descriptions stored in checkpoints, and building models from them: a backbone from
 * @refconv/backbones, optionally refocused (RefConv2D layers) or fused back to plain convs.
 */
import * as tf from '@tensorflow/tfjs';
import { createModel } from '@refconv/backbones';
import { fuse, refocus, type RefocusOptions } from '@refconv/core';
import { loadCheckpoint, reseedWeights, setModelWeights, type Checkpoint } from '@refconv/engine';

/** RefConv options that a checkpoint records (a JSON-able subset of RefocusOptions). */
export interface RefocusSpec {
  mapK: number;
  grouping: 'official' | 'per-kernel' | 'full';
  init: 'default' | 'zero';
  frozen: 'official' | 'transform-only';
}

/** Everything needed to rebuild a classifier's graph. */
export interface ModelSpec {
  /** @refconv/backbones architecture name, e.g. `cifar_resnet20`, `resnet18`. */
  arch: string;
  numClasses: number;
  inputSize: number;
  inChannels: number;
  width: number;
  /** Present when the convolutions are RefConv2D layers. */
  refocus?: RefocusSpec;
  /** True for a refocused model fused back to plain convolutions. */
  fused?: boolean;
}

/** Short label of a model kind for reports. */
export function modelKind(spec: ModelSpec): 'baseline' | 'refconv' | 'fused' {
  return spec.fused ? 'fused' : spec.refocus ? 'refconv' : 'baseline';
}

/** Builds the plain backbone of a spec, with weights re-drawn from `seed`. */
export function buildBaseline(spec: ModelSpec, seed: number): tf.LayersModel {
  const model = createModel(spec.arch, { numClasses: spec.numClasses, inputSize: spec.inputSize, inChannels: spec.inChannels, width: spec.width });
  reseedWeights(model, seed);
  return model;
}

/** Refocuses a trained baseline (the input model is not modified). */
export function refocusModel(baseline: tf.LayersModel, opts: RefocusSpec, seed: number): tf.LayersModel {
  const o: RefocusOptions = { mapK: opts.mapK, grouping: opts.grouping, init: opts.init, frozen: opts.frozen, seed };
  return refocus(baseline, o);
}

/**
 * Builds the graph a spec describes (weights uninitialised: load them next). A refocused
 * spec is built by refocusing a fresh backbone; a fused one by fusing that.
 */
export function buildFromSpec(spec: ModelSpec): tf.LayersModel {
  const base = createModel(spec.arch, { numClasses: spec.numClasses, inputSize: spec.inputSize, inChannels: spec.inChannels, width: spec.width });
  if (!spec.refocus) return base;
  const ref = refocusModel(base, spec.refocus, 0);
  base.dispose();
  if (!spec.fused) return ref;
  const fused = fuse(ref);
  ref.dispose();
  return fused;
}

/** Loads a classifier checkpoint: rebuilds the graph from its spec and loads the weights. */
export function loadClassifier(file: string): { model: tf.LayersModel; spec: ModelSpec; checkpoint: Checkpoint } {
  const checkpoint = loadCheckpoint(file);
  const spec = checkpoint.state.model as ModelSpec | undefined;
  if (!spec || typeof spec.arch !== 'string') throw new Error(`checkpoint ${file} has no model description (state.model.arch); was it written by @refconv/classify?`);
  const model = buildFromSpec(spec);
  setModelWeights(model, checkpoint.weights, { source: file });
  return { model, spec, checkpoint };
}
