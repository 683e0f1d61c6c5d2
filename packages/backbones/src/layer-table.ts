/**
 * Per-layer parameter and MAC counts in PyTorch's conventions (BN running statistics and frozen
 * RefConv bases are buffers, not parameters; MACs of conv / linear layers as torchvision's "GFLOPS").
 */
import type * as tf from '@tensorflow/tfjs';
import { layerFlops } from '@refconv/core';

/** One row of the layer table. */
export interface LayerRow {
  name: string;
  className: string;
  outputShape: string;
  params: number;
  macs: number;
}

const BUFFER_WEIGHTS = /\/(moving_mean|moving_variance|basis)(_\d+)?$/;

/** Parameters of a layer in PyTorch's sense (no BN running stats, no frozen RefConv basis). */
function layerParams(layer: tf.layers.Layer): number {
  return layer.weights.filter((w) => !BUFFER_WEIGHTS.test(w.originalName ?? w.name)).reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b as number), 1), 0);
}

/**
 * MACs of a layer for one image, as core's `layerFlops` counts them (it scales a conv between
 * SpaceToBatch / BatchToSpace, a dilated conv, back to the full image).
 */
function layerMacs(layer: tf.layers.Layer, model: tf.LayersModel): number {
  return layerFlops(layer, model);
}

/** The layer table of a model, in topological order. */
export function layerTable(model: tf.LayersModel): LayerRow[] {
  return model.layers.map((l) => ({
    name: l.name,
    className: l.getClassName(),
    outputShape: JSON.stringify(l.outputShape).replace(/null/g, 'N'),
    params: layerParams(l),
    macs: layerMacs(l, model),
  }));
}


/** Totals of a layer table. */
export function tableTotals(rows: LayerRow[]): { params: number; macs: number } {
  return { params: rows.reduce((n, r) => n + r.params, 0), macs: rows.reduce((n, r) => n + r.macs, 0) };
}
