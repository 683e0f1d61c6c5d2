/**
 * Adversarial robustness: FGSM (Goodfellow et al. 2015) and L-inf PGD (Madry et al. 2018).
 *
 * Everything is in the model's **normalised input space** (the tensor the model takes,
 * `(pixel/255 - mean) / std` per channel): an attack of radius eps moves every input value by at
 * most eps there (= eps * std_c in [0, 1] pixel units for channel c; Fashion-MNIST: eps * 0.353),
 * and the result is clamped to the valid image box `[(0 - mean_c)/std_c, (1 - mean_c)/std_c]`.
 * The loss is the mean softmax cross-entropy of the logits; BN runs in inference mode.
 *
 *   FGSM: x' = box(x + eps * sign(grad_x L(x, y)))
 *   PGD:  x_0 = x (+ U(-eps, eps) with a random start), then `steps` times
 *         x_{t+1} = box(clip_[x-eps, x+eps](x_t + alpha * sign(grad_x L(x_t, y))))
 */
import * as tf from '@tensorflow/tfjs';
import { Rng, createProgress } from '@refconv/engine';
import type { ImageBatch } from './data.js';

/** Per-channel bounds of the valid image box in normalised space. */
export interface InputBox {
  lo: number[];
  hi: number[];
}

/** The box `[(0 - mean)/std, (1 - mean)/std]` per channel. */
export function inputBox(mean: number[], std: number[]): InputBox {
  return { lo: mean.map((m, i) => (0 - m) / std[i]!), hi: mean.map((m, i) => (1 - m) / std[i]!) };
}

function clipBox(x: tf.Tensor4D, box: InputBox | undefined): tf.Tensor4D {
  if (!box) return x;
  return tf.minimum(tf.maximum(x, tf.tensor1d(box.lo)), tf.tensor1d(box.hi)) as tf.Tensor4D;
}

function lossGradSign(model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D, numClasses: number): tf.Tensor4D {
  const g = tf.grad((xi: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(y, numClasses), model.apply(xi, { training: false }) as tf.Tensor2D))(x);
  return tf.sign(g) as tf.Tensor4D;
}

const classesOf = (model: tf.LayersModel): number => model.outputs[0]!.shape[1] as number;

/**
 * FGSM adversarial examples.
 *
 * @param x `[B, H, W, C]` normalised inputs; @param y `[B]` int32 labels.
 * @param box clamp to this box (omit for no clamping).
 */
export function fgsm(model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D, eps: number, box?: InputBox): tf.Tensor4D {
  if (!(eps >= 0)) throw new Error(`fgsm: eps must be >= 0, got ${eps}`);
  return tf.tidy(() => clipBox(tf.add(x, tf.mul(lossGradSign(model, x, y, classesOf(model)), eps)) as tf.Tensor4D, box));
}

/** Options of {@link pgd}. */
export interface PgdOptions {
  eps: number;
  steps: number;
  /** Step size (default 2.5 * eps / steps, Madry et al.). */
  alpha?: number;
  box?: InputBox;
  /** Start from x + U(-eps, eps) drawn from this generator (default: start at x). */
  randomStart?: Rng;
}

/** L-inf PGD adversarial examples (see the module doc). */
export function pgd(model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D, o: PgdOptions): tf.Tensor4D {
  if (!(o.eps >= 0) || !(o.steps >= 1)) throw new Error(`pgd: need eps >= 0 and steps >= 1, got eps ${o.eps}, steps ${o.steps}`);
  const alpha = o.alpha ?? (2.5 * o.eps) / o.steps;
  const k = classesOf(model);
  const lo = tf.sub(x, o.eps);
  const hi = tf.add(x, o.eps);
  let xa: tf.Tensor4D = o.randomStart
    ? tf.tidy(() => clipBox(tf.add(x, tf.tensor(Float32Array.from({ length: x.size }, () => o.randomStart!.uniform(-o.eps, o.eps)), x.shape)) as tf.Tensor4D, o.box))
    : tf.clone(x);
  for (let s = 0; s < o.steps; s++) {
    const next = tf.tidy(() => {
      const stepped = tf.add(xa, tf.mul(lossGradSign(model, xa, y, k), alpha));
      return clipBox(tf.minimum(tf.maximum(stepped, lo), hi) as tf.Tensor4D, o.box);
    });
    xa.dispose();
    xa = next;
  }
  tf.dispose([lo, hi]);
  return xa;
}

/** Top-1 (%) of one attack at one radius. */
export interface AttackPoint {
  eps: number;
  top1: number;
}

/** Robustness of one model on a batch. */
export interface Robustness {
  images: number;
  clean: number;
  fgsm: AttackPoint[];
  pgd: AttackPoint[];
  pgdSteps: number;
}

/** Options of {@link robustness}. */
export interface RobustnessOptions {
  /** Radii in normalised input space (default 0.01, 0.02, 0.05, 0.1, 0.2). */
  eps?: number[];
  /** PGD steps (default 10); step size 2.5 * eps / steps; random start from `Rng(seed)`. */
  pgdSteps?: number;
  seed?: number;
  batchSize?: number;
  label?: string | false;
}

/** Top-1 of `model` on `batch` clean, under FGSM and under PGD at each radius (inputs clamped to the image box). */
export function robustness(model: tf.LayersModel, batch: ImageBatch, o: RobustnessOptions = {}): Robustness {
  const epsList = o.eps ?? [0.01, 0.02, 0.05, 0.1, 0.2];
  const steps = o.pgdSteps ?? 10;
  const bs = o.batchSize ?? 64;
  const box = inputBox(batch.mean, batch.std);
  const rng = new Rng(o.seed ?? 0);
  const per = batch.size * batch.size * batch.channels;
  let clean = 0;
  const f = epsList.map(() => 0), p = epsList.map(() => 0);
  const chunks = Math.ceil(batch.n / bs);
  const progress = o.label === false ? undefined : createProgress({ label: o.label ?? 'attacks', total: chunks });
  const correct = (xa: tf.Tensor4D, y: tf.Tensor1D): number => tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(model.predict(xa) as tf.Tensor2D, 1), y), 'int32')).dataSync()[0]!);
  for (let c = 0; c < chunks; c++) {
    const n = Math.min(bs, batch.n - c * bs);
    const x = tf.tensor4d(batch.x.subarray(c * bs * per, (c * bs + n) * per), [n, batch.size, batch.size, batch.channels]);
    const y = tf.tensor1d(batch.labels.subarray(c * bs, c * bs + n), 'int32');
    clean += correct(x, y);
    epsList.forEach((eps, i) => {
      const xf = fgsm(model, x, y, eps, box);
      f[i]! += correct(xf, y);
      xf.dispose();
      const xp = pgd(model, x, y, { eps, steps, box, randomStart: rng });
      p[i]! += correct(xp, y);
      xp.dispose();
    });
    tf.dispose([x, y]);
    progress?.tick(1, n);
  }
  progress?.finish({});
  const pct = (v: number): number => (100 * v) / batch.n;
  return { images: batch.n, clean: pct(clean), fgsm: epsList.map((eps, i) => ({ eps, top1: pct(f[i]!) })), pgd: epsList.map((eps, i) => ({ eps, top1: pct(p[i]!) })), pgdSteps: steps };
}
