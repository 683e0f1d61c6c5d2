/**
 * `refocus`: turn a pretrained model into a RefConv model. Every selected Conv2D /
 * DepthwiseConv2D becomes a {@link RefConv2D} holding the pretrained kernel as its frozen basis;
 * every other weight is carried over unchanged.
 */
import * as tf from '@tensorflow/tfjs';
import { buildModel, type LayerEntry, leafLayers, modelConfig, rewriteEntries, sharedConvConfig } from './model-config.js';
import type { Grouping, TransformInit } from './refconv-op.js';
import { validateRefocus } from './refconv-op.js';
import { RefConv2D } from './refconv-layer.js';

/** Options of {@link refocus}. */
export interface RefocusOptions {
  /** Size of the refocusing map. Default 3. */
  mapK?: number;
  /** Transform grouping. Default 'official'. */
  grouping?: Grouping;
  /** Transform init: 'default' (Kaiming-uniform, as the official code) or 'zero' (starts at the pretrained model). Default 'default'. */
  init?: TransformInit;
  /**
   * What trains besides the transforms: 'official' keeps every other weight trainable as it was
   * (only the bases are frozen); 'transform-only' freezes everything but the transforms.
   */
  frozen?: 'official' | 'transform-only';
  /**
   * Which layers to refocus: a list of layer names (or 'outer/inner' paths into nested models), or a
   * predicate. Default: every Conv2D / DepthwiseConv2D with a kernel of at least mapK.
   */
  select?: string[] | ((layer: tf.layers.Layer, path: string) => boolean);
  /** Seed for the 'default' init (each layer gets seed + its index). */
  seed?: number;
}

const CONV_CLASSES = new Set(['Conv2D', 'DepthwiseConv2D']);

function kernelOf(layer: tf.layers.Layer): tf.Tensor {
  const w = layer.getWeights()[0];
  if (!w) throw new Error(`layer '${layer.name}' has no kernel weights (is the model built?)`);
  return w;
}

function describeSelection(select: RefocusOptions['select']): (layer: tf.layers.Layer, path: string, mapK: number) => boolean {
  if (select === undefined) {
    return (layer, _path, mapK) => CONV_CLASSES.has(layer.getClassName()) && (kernelOf(layer).shape[0] as number) >= mapK;
  }
  if (typeof select === 'function') return (layer, path) => select(layer, path);
  const wanted = new Set(select);
  return (layer, path) => wanted.has(path) || wanted.has(layer.name);
}

/** Builds the RefConv2D config that replaces a Conv2D / DepthwiseConv2D entry. */
function refConvEntry(entry: LayerEntry, opts: Required<Pick<RefocusOptions, 'mapK' | 'grouping' | 'init' | 'frozen'>>, seed: number | undefined): LayerEntry {
  const c = entry.config;
  const depthwise = entry.className === 'DepthwiseConv2D';
  const config: Record<string, unknown> = {
    ...sharedConvConfig(c),
    depthwise,
    depthMultiplier: depthwise ? (c.depthMultiplier ?? 1) : 1,
    mapK: opts.mapK,
    grouping: opts.grouping,
    transformInit: opts.init,
  };
  if (opts.frozen === 'transform-only') config.trainBias = false;
  if (!depthwise) config.filters = c.filters;
  if (seed !== undefined) config.seed = seed;
  return { ...entry, className: RefConv2D.className, config };
}

/**
 * Returns a new model in which the selected convolutions are {@link RefConv2D} layers whose
 * basis is the pretrained kernel. The input model is not modified. Throws, naming the layer,
 * when a selected layer cannot be refocused (unsupported type, even kernel, map_k > K,
 * channels-first data, non-square kernel).
 */
export function refocus(model: tf.LayersModel, options: RefocusOptions = {}): tf.LayersModel {
  const mapK = options.mapK ?? 3;
  const grouping = options.grouping ?? 'official';
  const init = options.init ?? 'default';
  const frozen = options.frozen ?? 'official';
  if (!['official', 'per-kernel', 'full'].includes(grouping)) throw new Error(`refocus: unknown grouping '${grouping}' (official, per-kernel, full)`);
  if (init !== 'default' && init !== 'zero') throw new Error(`refocus: unknown init '${init}' (default, zero)`);
  if (frozen !== 'official' && frozen !== 'transform-only') throw new Error(`refocus: unknown frozen scope '${frozen}' (official, transform-only)`);
  if (!(Number.isInteger(mapK) && mapK > 0 && mapK % 2 === 1)) throw new Error(`refocus: map_k must be a positive odd integer (1, 3, 5), got ${mapK}`);

  const layers = leafLayers(model);
  const isSelected = describeSelection(options.select);
  if (Array.isArray(options.select)) {
    const known = new Set([...layers.keys(), ...[...layers.values()].map((l) => l.name)]);
    const missing = options.select.filter((n) => !known.has(n));
    if (missing.length) throw new Error(`refocus: no layer named ${missing.map((n) => `'${n}'`).join(', ')} in model '${model.name}'`);
  }

  const chosen = new Set<string>();
  for (const [path, layer] of layers) {
    if (!isSelected(layer, path, mapK)) continue;
    const cls = layer.getClassName();
    if (!CONV_CLASSES.has(cls)) {
      throw new Error(`refocus: layer '${path}' is a ${cls}; only Conv2D and DepthwiseConv2D can be refocused`);
    }
    const cfg = layer.getConfig();
    if (cfg.dataFormat === 'channelsFirst') throw new Error(`refocus: layer '${path}' uses channelsFirst data; RefConv2D supports channelsLast only`);
    const shape = kernelOf(layer).shape as number[];
    if (shape[0] !== shape[1]) throw new Error(`refocus: layer '${path}' has a non-square ${shape[0]}x${shape[1]} kernel`);
    validateRefocus(`refocus: layer '${path}'`, { kernelSize: shape[0], inChannels: shape[2], outPerGroup: shape[3], depthwise: cls === 'DepthwiseConv2D' }, mapK);
    chosen.add(path);
  }

  const { className, config } = modelConfig(model);
  let index = 0;
  rewriteEntries(config, (entry, path) => {
    if (!chosen.has(path.join('/'))) return;
    const seed = options.seed === undefined ? undefined : options.seed + index++;
    return refConvEntry(entry, { mapK, grouping, init, frozen }, seed);
  });

  const out = buildModel(className, config);
  try {
    const newLayers = leafLayers(out);
    for (const [path, layer] of newLayers) {
      const old = layers.get(path);
      if (!old) throw new Error(`refocus: internal error, layer '${path}' has no source layer`);
      if (layer instanceof RefConv2D) {
        const [kernel, bias] = old.getWeights();
        layer.setBasis(kernel);
        if (bias) layer.setBias(bias);
      } else {
        layer.setWeights(old.getWeights());
      }
      if (frozen === 'transform-only' && !(layer instanceof RefConv2D)) layer.trainable = false;
    }
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}

/** Names (paths) of the RefConv2D layers in a model. */
export function refConvLayers(model: tf.LayersModel): RefConv2D[] {
  return [...leafLayers(model).values()].filter((l): l is RefConv2D => l instanceof RefConv2D);
}
