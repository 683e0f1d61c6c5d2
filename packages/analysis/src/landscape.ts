/**
 * Loss landscapes: 1-D linear interpolation between two models, and the 2-D filter-normalised
 * random-direction surface of Li et al. (NeurIPS 2018, "Visualizing the Loss Landscape of Neural
 * Nets"), with BN in inference mode (its moving statistics fixed).
 *
 * Directions (Li et al.'s `filter` normalisation with `ignore='biasbn'`): for every trainable weight
 * of rank >= 2 (conv kernels `[K, K, Cin, Cout]`, dense kernels `[in, out]`) a standard normal
 * tensor d, then for each filter f (one slice of the LAST axis: an output channel / unit, = the
 * first axis of PyTorch's layout) `d_f <- d_f * ||w_f|| / (||d_f|| + 1e-10)`; biases, BN parameters
 * and all non-trainable weights (BN moving statistics, RefConv bases) get 0.
 * The surface is `L(a, b) = loss(theta + a d1 + b d2)` on a grid of a, b in [-range, range].
 * RefConv models are analysed in their fused form (plain convs with W_t; the same function), so
 * that every model is perturbed in the same parameter space.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng, createProgress } from '@refconv/engine';
import { fuse, refConvLayers } from '@refconv/core';
import type { ImageBatch } from './data.js';

/**
 * Li et al.'s filter normalisation of one direction tensor against its weight (row-major,
 * filters along the last axis). Rank <= 1 gives zeros (`ignore='biasbn'`).
 */
export function filterNormalize(direction: Float32Array, weight: Float32Array, shape: readonly number[]): Float32Array {
  if (direction.length !== weight.length) throw new Error(`filterNormalize: direction has ${direction.length} values, weight ${weight.length}`);
  const out = new Float32Array(direction.length);
  if (shape.length <= 1) return out;
  const f = shape[shape.length - 1]!;
  const rows = direction.length / f;
  for (let j = 0; j < f; j++) {
    let dn = 0, wn = 0;
    for (let r = 0; r < rows; r++) { dn += direction[r * f + j]! ** 2; wn += weight[r * f + j]! ** 2; }
    const s = Math.sqrt(wn) / (Math.sqrt(dn) + 1e-10);
    for (let r = 0; r < rows; r++) out[r * f + j] = direction[r * f + j]! * s;
  }
  return out;
}

/** The model a landscape is computed on: the fused form of a RefConv model, else the model itself. */
export function landscapeModel(model: tf.LayersModel): { model: tf.LayersModel; owned: boolean } {
  return refConvLayers(model).length > 0 ? { model: fuse(model), owned: true } : { model, owned: false };
}

/** A filter-normalised random direction for each of `model.weights` (zeros where excluded). */
export function randomDirection(model: tf.LayersModel, rng: Rng): Float32Array[] {
  return model.weights.map((w) => {
    const v = w.read();
    const n = v.size;
    if (!w.trainable || v.rank <= 1) return new Float32Array(n);
    const d = Float32Array.from({ length: n }, () => rng.normal());
    return filterNormalize(d, v.dataSync() as Float32Array, v.shape);
  });
}

/** Mean cross-entropy and top-1 (%) of a model on a batch (inference mode). */
export function lossAndAccuracy(model: tf.LayersModel, batch: ImageBatch, batchSize = 128): { loss: number; top1: number } {
  const per = batch.size * batch.size * batch.channels;
  let loss = 0, hits = 0;
  for (let i = 0; i < batch.n; i += batchSize) {
    const n = Math.min(batchSize, batch.n - i);
    const [l, h] = tf.tidy(() => {
      const x = tf.tensor4d(batch.x.subarray(i * per, (i + n) * per), [n, batch.size, batch.size, batch.channels]);
      const y = tf.tensor1d(batch.labels.subarray(i, i + n), 'int32');
      const logits = model.predict(x) as tf.Tensor2D;
      const k = logits.shape[1];
      const ce = tf.losses.softmaxCrossEntropy(tf.oneHot(y, k), logits, undefined, undefined, tf.Reduction.SUM);
      return [ce.dataSync()[0]!, tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'int32')).dataSync()[0]!];
    });
    loss += l!;
    hits += h!;
  }
  return { loss: loss / batch.n, top1: (100 * hits) / batch.n };
}

/**
 * Runs `fn` with the model's weights set to `base + sum_i coef_i * dirs_i`, then restores them.
 * `base` and `dirs` are per `model.weights`, in its order.
 */
export function withWeights<T>(model: tf.LayersModel, base: Float32Array[], terms: Array<[number, Float32Array[]]>, fn: () => T): T {
  const saved = model.weights.map((w) => tf.clone(w.read()));
  try {
    model.weights.forEach((w, i) => {
      const v = new Float32Array(base[i]!);
      for (const [c, d] of terms) if (c !== 0) { const di = d[i]!; for (let j = 0; j < v.length; j++) v[j]! += c * di[j]!; }
      tf.tidy(() => { w.write(tf.tensor(v, w.shape as number[])); });
    });
    return fn();
  } finally {
    model.weights.forEach((w, i) => w.write(saved[i]!));
    tf.dispose(saved);
  }
}

/** The weights of a model as arrays, in `model.weights` order. */
export function weightArrays(model: tf.LayersModel): Float32Array[] {
  return model.weights.map((w) => new Float32Array(w.read().dataSync()));
}

/** A 2-D surface and its sharpness. */
export interface Surface2D {
  /** Grid coordinates (the same for both axes). */
  coords: number[];
  /** `loss[i][j]` at (a = coords[j], b = coords[i]) (row = b). */
  loss: number[][];
  top1: number[][];
  /** Loss at the model itself. */
  center: number;
  /** Mean of L(theta + r (cos phi d1 + sin phi d2)) - L(theta) over `angles` evenly spaced phi. */
  sharpness: number;
  radius: number;
}

/** Options of {@link surface2d}. */
export interface Surface2DOptions {
  /** Grid points per axis (default 11). */
  points?: number;
  /** Coordinates span [-range, range] (default 1). */
  range?: number;
  /** Directions drawn from `Rng(seed)` (default 0). */
  seed?: number;
  /** Sharpness radius and number of angles (default 0.25, 16). */
  radius?: number;
  angles?: number;
  /** Fixed directions (for tests); default: two drawn with {@link randomDirection}. */
  directions?: [Float32Array[], Float32Array[]];
  label?: string | false;
}

/** The filter-normalised 2-D loss surface around `model` on `batch` (see the module doc). */
export function surface2d(model: tf.LayersModel, batch: ImageBatch, o: Surface2DOptions = {}): Surface2D {
  const points = o.points ?? 11, range = o.range ?? 1, radius = o.radius ?? 0.25, angles = o.angles ?? 16;
  if (!(points >= 2)) throw new Error(`surface2d: points must be >= 2, got ${points}`);
  const rng = new Rng(o.seed ?? 0);
  const [d1, d2] = o.directions ?? [randomDirection(model, rng), randomDirection(model, rng)];
  const base = weightArrays(model);
  const coords = Array.from({ length: points }, (_, i) => -range + (2 * range * i) / (points - 1));
  const progress = o.label === false ? undefined : createProgress({ label: o.label ?? 'surface', total: points * points + angles + 1 });
  const at = (a: number, b: number) => { const r = withWeights(model, base, [[a, d1], [b, d2]], () => lossAndAccuracy(model, batch)); progress?.tick(1, batch.n); return r; };
  const center = at(0, 0).loss;
  const loss: number[][] = [], top1: number[][] = [];
  for (const b of coords) {
    const row = coords.map((a) => at(a, b));
    loss.push(row.map((r) => r.loss));
    top1.push(row.map((r) => r.top1));
  }
  let inc = 0;
  for (let k = 0; k < angles; k++) {
    const phi = (2 * Math.PI * k) / angles;
    inc += at(radius * Math.cos(phi), radius * Math.sin(phi)).loss - center;
  }
  progress?.finish({});
  return { coords, loss, top1, center, sharpness: inc / angles, radius };
}

/** One point of a 1-D interpolation. */
export interface InterpolationPoint {
  alpha: number;
  loss: number;
  top1: number;
}

/**
 * Loss and top-1 along `theta(alpha) = (1 - alpha) theta_A + alpha theta_B` (every weight,
 * BN moving statistics included), evaluated in model A's graph. The models must have the same
 * weight names and shapes (compare a RefConv model through its fused form).
 */
export function interpolate(a: tf.LayersModel, b: tf.LayersModel, batch: ImageBatch, alphas: number[], label: string | false = 'interpolate'): InterpolationPoint[] {
  const byName = new Map(b.weights.map((w) => [w.originalName, w]));
  const problems: string[] = [];
  for (const w of a.weights) {
    const o = byName.get(w.originalName);
    if (!o) problems.push(`'${w.originalName}' missing in the second model`);
    else if (o.shape.join() !== w.shape.join()) problems.push(`'${w.originalName}' is [${w.shape}] vs [${o.shape}]`);
  }
  if (a.weights.length !== b.weights.length) problems.push(`${a.weights.length} vs ${b.weights.length} weights`);
  if (problems.length) throw new Error(`interpolate: the models differ: ${problems.slice(0, 5).join('; ')}`);
  const thetaA = weightArrays(a);
  const delta = a.weights.map((w, i) => { const tb = byName.get(w.originalName)!.read().dataSync(); return Float32Array.from(thetaA[i]!, (v, j) => tb[j]! - v); });
  const progress = label === false ? undefined : createProgress({ label, total: alphas.length });
  const out = alphas.map((alpha) => { const r = withWeights(a, thetaA, [[alpha, delta]], () => lossAndAccuracy(a, batch)); progress?.tick(1, batch.n); return { alpha, ...r }; });
  progress?.finish({});
  return out;
}
