/**
 * The single entry point: `createModel(arch, options)` over a plain name -> builder table.
 */
import * as tf from '@tensorflow/tfjs';
import { cifarResnetEntries } from './models/cifar-resnet.js';
import { mobilenetV1Entries } from './models/mobilenetv1.js';
import { mobilenetV2Entries } from './models/mobilenetv2.js';
import { mobilenetV3Entries } from './models/mobilenetv3.js';
import { resnetEntries } from './models/resnet.js';
import { shufflenetV2Entries } from './models/shufflenetv2.js';
import type { CreateModelOptions, ModelEntry, ResolvedOptions } from './types.js';

const REGISTRY = new Map<string, ModelEntry>(
  [...resnetEntries, ...cifarResnetEntries, ...mobilenetV1Entries, ...mobilenetV2Entries, ...mobilenetV3Entries, ...shufflenetV2Entries].map((e) => [e.name, e]),
);

/** Names of all registered architectures, in registration order. */
export function listModels(): string[] {
  return [...REGISTRY.keys()];
}

/** The registry entry of an architecture (description, defaults, whether it supports outputStride). */
export function modelInfo(arch: string): Omit<ModelEntry, 'build'> {
  const { build: _build, ...info } = entry(arch);
  return info;
}

function entry(arch: string): ModelEntry {
  const e = REGISTRY.get(arch);
  if (!e) throw new Error(`unknown architecture '${arch}'; available: ${listModels().join(', ')}`);
  return e;
}

const KNOWN_OPTIONS = new Set(['numClasses', 'inputSize', 'inChannels', 'width', 'features', 'outputStride', 'dropout']);

function resolve(arch: string, e: ModelEntry, o: CreateModelOptions): ResolvedOptions {
  const unknown = Object.keys(o).filter((k) => !KNOWN_OPTIONS.has(k));
  if (unknown.length) throw new Error(`createModel('${arch}'): unknown option(s) ${unknown.join(', ')}; known: ${[...KNOWN_OPTIONS].join(', ')}`);
  const size = o.inputSize ?? e.defaults.inputSize;
  const inputSize: [number, number] = typeof size === 'number' ? [size, size] : [size[0], size[1]];
  if (!inputSize.every((s) => Number.isInteger(s) && s > 0)) throw new Error(`createModel('${arch}'): inputSize must be positive integers, got ${JSON.stringify(o.inputSize)}`);
  const numClasses = o.numClasses ?? e.defaults.numClasses;
  if (!(Number.isInteger(numClasses) && numClasses > 0)) throw new Error(`createModel('${arch}'): numClasses must be a positive integer, got ${o.numClasses}`);
  const inChannels = o.inChannels ?? 3;
  if (!(Number.isInteger(inChannels) && inChannels > 0)) throw new Error(`createModel('${arch}'): inChannels must be a positive integer, got ${o.inChannels}`);
  const width = o.width ?? 1;
  if (!(typeof width === 'number' && width > 0)) throw new Error(`createModel('${arch}'): width must be a positive number, got ${o.width}`);
  const outputStride = o.outputStride ?? 32;
  if (![8, 16, 32].includes(outputStride)) throw new Error(`createModel('${arch}'): outputStride must be 8, 16 or 32, got ${o.outputStride}`);
  if (outputStride !== 32 && !e.dilatable) throw new Error(`createModel('${arch}'): outputStride ${outputStride} is not supported by this architecture (only 32)`);
  if (o.dropout !== undefined && !(o.dropout >= 0 && o.dropout < 1)) throw new Error(`createModel('${arch}'): dropout must be in [0, 1), got ${o.dropout}`);
  return { numClasses, inputSize, inChannels, width, features: o.features ?? false, outputStride, dropout: o.dropout };
}

/**
 * Builds a registered architecture as a tfjs LayersModel (NHWC input `[N, H, W, inChannels]`).
 *
 * - `features: false` (default): one output, logits `[N, numClasses]` (no softmax, as torchvision).
 * - `features: true`: outputs C2, C3, C4, C5 (`[N, H/s, W/s, C]` for nominal strides 4, 8, 16, 32;
 *   see {@link featureInfo}); the output layers are named by their PyTorch module paths.
 *
 * Layers holding parameters are named by their torchvision module path, so
 * `<layer name>.<param>` is the PyTorch state-dict key (see `loadTorchWeights`).
 * Inputs are expected normalised as torchvision expects (ImageNet mean/std); no preprocessing layer.
 *
 * @throws on an unknown architecture, an unknown option or an invalid value, naming it.
 */
export function createModel(arch: string, options: CreateModelOptions = {}): tf.LayersModel {
  const e = entry(arch);
  const opts = resolve(arch, e, options);
  const input = tf.input({ shape: [opts.inputSize[0], opts.inputSize[1], opts.inChannels], name: 'input' });
  const built = e.build(input, opts);
  if (opts.features) {
    return tf.model({ inputs: input, outputs: built.taps.map((t) => t.tensor), name: `${arch}_features` });
  }
  if (!built.logits) throw new Error(`createModel('${arch}'): internal error, builder returned no logits`);
  return tf.model({ inputs: input, outputs: built.logits, name: arch });
}

/** One feature output of a `features: true` model. */
export interface FeatureInfo {
  /** C2..C5 for ImageNet backbones (C{log2 stride}). */
  name: string;
  /** Layer that produces it (its PyTorch module path). */
  layer: string;
  /** Actual reduction relative to the input (equals the nominal one unless outputStride < 32). */
  stride: number;
  /** Channels. */
  channels: number;
}

/** Describes the outputs of a `features: true` model (channels and strides for an FPN / decoder). */
export function featureInfo(model: tf.LayersModel): FeatureInfo[] {
  const inShape = model.inputs[0]!.shape;
  const h = inShape[1] as number;
  const fourLevels = model.outputs.length === 4; // ImageNet backbones: C2..C5 even when dilated
  return model.outputs.map((o, i) => {
    const s = o.shape;
    const stride = Math.round(h / (s[1] as number));
    const name = fourLevels ? `C${i + 2}` : `C${Math.round(Math.log2(stride))}`;
    return { name, layer: o.sourceLayer.name, stride, channels: s[3] as number };
  });
}
