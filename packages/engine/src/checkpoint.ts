/**
 * Training checkpoints: one safetensors file holding the model weights (under their tfjs
 * layer-variable names, e.g. `conv1/kernel`), the optimizer's momentum buffers (under
 * `__optimizer__/momentum/<param>`), and a JSON training state in the `__metadata__`
 * entry `refconv.state` (epoch, step, RNG, class names, model config, metrics, ...).
 *
 * One file means one atomic rename: a run killed while saving leaves the previous
 * checkpoint intact, and `--resume` never sees weights from one epoch with state from another.
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { encodeSafetensors, readSafetensors, type SafeTensor, type SafeTensorInput } from '@refconv/core';
import { writeFileAtomic } from './fs-atomic.js';
import type { SgdState } from './sgd.js';
import type { RngState } from './rng.js';

/** Format tag stored in every checkpoint. */
export const CHECKPOINT_FORMAT = 'refconv-checkpoint/1';
const STATE_KEY = 'refconv.state';
const OPTIM_PREFIX = '__optimizer__/momentum/';

/** The JSON part of a checkpoint. Pipelines add their own fields under `extra`. */
export interface TrainingState {
  /** Number of fully completed epochs. */
  epoch: number;
  /** Number of optimizer steps done (the LR schedule position). */
  step: number;
  /** State of the run's RNG after `epoch` epochs. */
  rng?: RngState;
  /** Optimizer step count (buffers are stored as tensors). */
  optimizerStep?: number;
  /** Class names in label-index order. */
  classNames?: string[];
  /** Model description needed to rebuild it (architecture name and options). */
  model?: Record<string, unknown>;
  /** Latest metrics (e.g. val top-1). */
  metrics?: Record<string, number>;
  /** Anything else the pipeline needs to resume or describe the run. */
  extra?: Record<string, unknown>;
}

/** A checkpoint as read back by {@link loadCheckpoint}. */
export interface Checkpoint {
  /** Model weights by name, in file order. */
  weights: Map<string, SafeTensor>;
  /** Optimizer state, when the checkpoint has one. */
  optimizer?: SgdState;
  /** The JSON training state. */
  state: TrainingState;
}

/** What {@link saveCheckpoint} writes. */
export interface CheckpointContents {
  /** Model weights, e.g. from {@link modelWeights}. */
  weights: Record<string, SafeTensorInput>;
  /** Optimizer state to resume from; omit for an inference-only file. */
  optimizer?: SgdState;
  /** JSON training state. */
  state: TrainingState;
}

/** Writes a checkpoint atomically (see module doc). */
export function saveCheckpoint(file: string, contents: CheckpointContents): void {
  const tensors: Record<string, SafeTensorInput> = {};
  for (const [name, t] of Object.entries(contents.weights)) {
    if (name.startsWith('__optimizer__/')) throw new Error(`saveCheckpoint: weight name '${name}' uses the reserved prefix __optimizer__/`);
    tensors[name] = t;
  }
  if (contents.optimizer) {
    for (const [name, buf] of Object.entries(contents.optimizer.momentum)) tensors[OPTIM_PREFIX + name] = buf;
  }
  const state: TrainingState & { format: string } = {
    format: CHECKPOINT_FORMAT,
    ...contents.state,
    ...(contents.optimizer ? { optimizerStep: contents.optimizer.step } : {}),
  };
  writeFileAtomic(file, encodeSafetensors(tensors, { [STATE_KEY]: JSON.stringify(state) }));
}

/** Reads a checkpoint written by {@link saveCheckpoint}; errors name the file. */
export function loadCheckpoint(file: string): Checkpoint {
  if (!fs.existsSync(file)) throw new Error(`checkpoint ${file} does not exist`);
  let contents: ReturnType<typeof readSafetensors>;
  try {
    contents = readSafetensors(file);
  } catch (e) {
    throw new Error(`checkpoint ${file} is not a readable safetensors file: ${(e as Error).message}`);
  }
  const raw = contents.metadata[STATE_KEY];
  if (raw === undefined) throw new Error(`checkpoint ${file} has no '${STATE_KEY}' metadata: not written by @refconv/engine saveCheckpoint`);
  let state: TrainingState & { format?: string };
  try {
    state = JSON.parse(raw) as TrainingState & { format?: string };
  } catch (e) {
    throw new Error(`checkpoint ${file}: '${STATE_KEY}' metadata is not valid JSON: ${(e as Error).message}`);
  }
  if (state.format !== CHECKPOINT_FORMAT) throw new Error(`checkpoint ${file}: unsupported format '${state.format}' (expected ${CHECKPOINT_FORMAT})`);
  const weights = new Map<string, SafeTensor>();
  const momentum: SgdState['momentum'] = {};
  for (const [name, t] of contents) {
    if (name.startsWith(OPTIM_PREFIX)) momentum[name.slice(OPTIM_PREFIX.length)] = { shape: t.shape, data: t.data as Float32Array };
    else weights.set(name, t);
  }
  const optimizer = state.optimizerStep !== undefined ? { step: state.optimizerStep, momentum } : undefined;
  return { weights, optimizer, state };
}

/**
 * A model's weights (trainable and not, e.g. BatchNorm moving statistics) keyed by their
 * layer-variable `originalName` (`<layer>/<weight>`, stable across processes unlike `name`).
 */
export function modelWeights(model: tf.LayersModel): Record<string, SafeTensorInput> {
  const out: Record<string, SafeTensorInput> = {};
  for (const w of model.weights) {
    if (out[w.originalName]) throw new Error(`modelWeights: two weights are named '${w.originalName}' in model '${model.name}'`);
    out[w.originalName] = { shape: w.read().shape, data: w.read().dataSync() as Float32Array };
  }
  return out;
}

/**
 * Copies named weights into a model. With `strict` (default) every model weight must be
 * present with the same shape and no extra names may remain; errors list the mismatches.
 */
export function setModelWeights(model: tf.LayersModel, weights: Map<string, SafeTensor>, opts: { strict?: boolean; source?: string } = {}): void {
  const strict = opts.strict ?? true;
  const where = opts.source ? ` (from ${opts.source})` : '';
  const problems: string[] = [];
  const used = new Set<string>();
  const assignments: Array<[tf.LayerVariable, SafeTensor]> = [];
  for (const w of model.weights) {
    const t = weights.get(w.originalName);
    if (!t) {
      if (strict) problems.push(`missing '${w.originalName}' [${w.shape}]`);
      continue;
    }
    used.add(w.originalName);
    if (!tf.util.arraysEqual(t.shape, w.read().shape)) {
      problems.push(`'${w.originalName}': checkpoint has [${t.shape}], model has [${w.shape}]`);
      continue;
    }
    assignments.push([w, t]);
  }
  if (strict) for (const name of weights.keys()) if (!used.has(name)) problems.push(`unexpected '${name}'`);
  if (problems.length > 0) {
    const shown = problems.slice(0, 12).join('; ') + (problems.length > 12 ? `; ... ${problems.length - 12} more` : '');
    throw new Error(`cannot load weights into model '${model.name}'${where}: ${shown}`);
  }
  for (const [w, t] of assignments) {
    const value = tf.tensor(t.data as Float32Array, t.shape, 'float32');
    w.write(value);
    value.dispose();
  }
}
