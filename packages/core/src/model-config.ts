/**
 * Helpers for rewriting a tfjs LayersModel through its (TS-format) config: the shape of
 * `model.getConfig()`, walking nested containers, rebuilding, and looking layers up by path.
 * `refocus` and `fuse` are config rewrites followed by a weight copy, so the input model is
 * never touched and nothing half-converted can escape.
 */
import * as tf from '@tensorflow/tfjs';

/** [layerName, nodeIndex, tensorIndex, kwargs] as in tfjs/Keras functional configs. */
export type NodeRef = [string, number, number, Record<string, unknown>?];

/** One layer inside a container config. */
export interface LayerEntry {
  className: string;
  name?: string;
  config: Record<string, unknown>;
  inboundNodes?: NodeRef[][];
}

/** The config of a Sequential or functional model. */
export interface ContainerConfig {
  name: string;
  layers: LayerEntry[];
  inputLayers?: NodeRef[];
  outputLayers?: NodeRef[];
  [k: string]: unknown;
}

const CONTAINER_CLASSES = new Set(['Sequential', 'Functional', 'Model']);

export function isContainerEntry(e: LayerEntry): boolean {
  return CONTAINER_CLASSES.has(e.className);
}

export function entryName(e: LayerEntry): string {
  return (e.name ?? (e.config.name as string)) as string;
}

/** Deep copy of a model's config (the input model's own config objects are never edited). */
export function modelConfig(model: tf.LayersModel): { className: string; config: ContainerConfig } {
  return { className: model.getClassName(), config: structuredClone(model.getConfig()) as unknown as ContainerConfig };
}

/** Builds a model from a config produced by {@link modelConfig} (possibly rewritten). */
export function buildModel(className: string, config: ContainerConfig): tf.LayersModel {
  const cfg = config as unknown as tf.serialization.ConfigDict;
  if (className === 'Sequential') return tf.Sequential.fromConfig(tf.Sequential, cfg) as tf.LayersModel;
  return tf.LayersModel.fromConfig(tf.LayersModel, cfg) as tf.LayersModel;
}

/**
 * Visits every non-container layer entry, depth first, with its path (container names below the
 * root, then the layer name). `visit` may return a replacement entry.
 */
export function rewriteEntries(
  config: ContainerConfig,
  visit: (entry: LayerEntry, path: string[], container: ContainerConfig) => LayerEntry | void,
  prefix: string[] = [],
): void {
  config.layers = config.layers.map((entry) => {
    const name = entryName(entry);
    if (isContainerEntry(entry)) {
      rewriteEntries(entry.config as unknown as ContainerConfig, visit, [...prefix, name]);
      return entry;
    }
    return visit(entry, [...prefix, name], config) ?? entry;
  });
}

/** Visits every container config (root first), with its path. */
export function forEachContainer(config: ContainerConfig, visit: (c: ContainerConfig, path: string[]) => void, prefix: string[] = []): void {
  visit(config, prefix);
  for (const entry of config.layers) {
    if (isContainerEntry(entry)) forEachContainer(entry.config as unknown as ContainerConfig, visit, [...prefix, entryName(entry)]);
  }
}

/** Every leaf layer of a model (descending into nested models), keyed by its path joined with '/'. */
export function leafLayers(model: tf.LayersModel): Map<string, tf.layers.Layer> {
  const out = new Map<string, tf.layers.Layer>();
  const walk = (container: tf.LayersModel, prefix: string[]) => {
    for (const layer of container.layers) {
      const path = [...prefix, layer.name];
      if (layer instanceof tf.LayersModel) walk(layer, path);
      else out.set(path.join('/'), layer);
    }
  };
  walk(model, []);
  return out;
}

/**
 * The config fields a Conv2D, DepthwiseConv2D and RefConv2D share, copied from one layer's config
 * (used when refocus / fuse swap one kind for another).
 */
export function sharedConvConfig(c: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: c.name,
    trainable: c.trainable,
    dtype: c.dtype,
    kernelSize: c.kernelSize,
    strides: c.strides,
    padding: c.padding,
    dilationRate: c.dilationRate,
    useBias: c.useBias,
    activation: c.activation,
  };
  if (c.batchInputShape !== undefined) out.batchInputShape = c.batchInputShape;
  return out;
}
