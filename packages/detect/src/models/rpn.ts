/**
 * Region proposal network pieces that run outside the LayersModel (torchvision `rpn.py`):
 * proposal selection and the RPN training losses. The RPN head itself (shared 3x3 conv, 1x1
 * objectness and box-delta convs) is part of the Faster R-CNN network in `fasterrcnn.ts`.
 *
 * Layout: anchors of all levels concatenated level by level, each level row-major over the
 * feature map with the anchors of one location innermost (`[T, 4]` xyxy); per-image predictions
 * `objectness [B, T]`, `deltas [B, T, 4]` in the same order.
 */
import * as tf from '@tensorflow/tfjs';
import type { BoxCoder } from '../ops/box-coder.js';
import { batchedNms, boxIouHost } from '../ops/boxes.js';
import { binaryCrossEntropyWithLogits, smoothL1Loss } from '../ops/losses.js';
import { BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS, type Matcher } from '../ops/matcher.js';
import { samplePositiveNegative, type PermutationSource } from '../ops/sampler.js';
import type { ImageTargets } from './detector.js';

/** Settings of {@link filterProposals}. */
export interface ProposalOptions {
  /** Proposals kept per level (by objectness) before NMS. */
  preNmsTopN: number;
  /** Proposals kept per image after NMS. */
  postNmsTopN: number;
  nmsThreshold: number;
  /** Boxes with a side below this are dropped (torchvision 1e-3). */
  minSize?: number;
}

/**
 * torchvision `RegionProposalNetwork.filter_proposals`: per image and level the `preNmsTopN`
 * anchors with the highest objectness, decoded, clipped to the image, tiny boxes removed, NMS per
 * level, then the best `postNmsTopN` of the image. No gradient flows through proposals.
 * @param objectness `[B * T]` logits
 * @param deltas `[B, T, 4]` RPN box codes
 * @param anchors `[T, 4]`
 * @param levelSizes anchors per level (sum T)
 * @param imageSizes `[h, w]` of each image's content (boxes are clipped to it)
 * @returns per image, `[P * 4]` xyxy proposals by decreasing objectness
 */
export function filterProposals(
  objectness: ArrayLike<number>,
  deltas: tf.Tensor3D,
  anchors: tf.Tensor2D,
  levelSizes: readonly number[],
  imageSizes: readonly (readonly [number, number])[],
  coder: BoxCoder,
  opts: ProposalOptions,
): Float32Array[] {
  const T = levelSizes.reduce((a, b) => a + b, 0);
  const minSize = opts.minSize ?? 1e-3;
  return imageSizes.map(([h, w], b) => {
    const idx: number[] = [];
    const lvl: number[] = [];
    let start = 0;
    levelSizes.forEach((n, l) => {
      const order = Array.from({ length: n }, (_, i) => start + i).sort((x, y) => objectness[b * T + y]! - objectness[b * T + x]! || x - y);
      for (const i of order.slice(0, opts.preNmsTopN)) (idx.push(i), lvl.push(l));
      start += n;
    });
    const decoded = tf.tidy(() => {
      const i = tf.tensor1d(Int32Array.from(idx), 'int32');
      const d = tf.gather(deltas.slice([b, 0, 0], [1, T, 4]).reshape([T, 4]), i) as tf.Tensor2D;
      return coder.decode(d, tf.gather(anchors, i) as tf.Tensor2D).dataSync() as Float32Array;
    });
    const keep: number[] = [];
    for (let k = 0; k < idx.length; k++) {
      decoded[4 * k] = Math.min(Math.max(decoded[4 * k]!, 0), w);
      decoded[4 * k + 1] = Math.min(Math.max(decoded[4 * k + 1]!, 0), h);
      decoded[4 * k + 2] = Math.min(Math.max(decoded[4 * k + 2]!, 0), w);
      decoded[4 * k + 3] = Math.min(Math.max(decoded[4 * k + 3]!, 0), h);
      if (decoded[4 * k + 2]! - decoded[4 * k]! >= minSize && decoded[4 * k + 3]! - decoded[4 * k + 1]! >= minSize) keep.push(k);
    }
    const sub = new Float32Array(keep.length * 4);
    keep.forEach((k, j) => sub.set(decoded.subarray(4 * k, 4 * k + 4), 4 * j));
    const scores = keep.map((k) => objectness[b * T + idx[k]!]!);
    const kept = batchedNms(sub, scores, keep.map((k) => lvl[k]!), opts.nmsThreshold).slice(0, opts.postNmsTopN);
    const out = new Float32Array(kept.length * 4);
    kept.forEach((k, j) => out.set(sub.subarray(4 * k, 4 * k + 4), 4 * j));
    return out;
  });
}

/** Anchors sampled for the RPN loss of a batch (rows index the flattened `[B * T]` predictions). */
export interface RpnSamples {
  /** Sampled rows, positives and negatives, ascending. */
  rows: number[];
  /** 1 / 0 per sampled row. */
  labels: number[];
  /** Positive rows, ascending, and their matched ground-truth boxes (`[P * 4]`). */
  positiveRows: number[];
  positiveGt: number[];
}

/**
 * torchvision `assign_targets_to_anchors` + the RPN's `fg_bg_sampler`: anchors with IoU >= the
 * high threshold (or the best anchor of a ground truth) are positive, below the low threshold
 * negative, in between ignored; `batchSizePerImage` anchors are sampled per image.
 */
export function sampleRpnTargets(
  anchors: Float32Array,
  targets: readonly ImageTargets[],
  matcher: Matcher,
  batchSizePerImage: number,
  positiveFraction: number,
  rng: PermutationSource,
): RpnSamples {
  const T = anchors.length / 4;
  const out: RpnSamples = { rows: [], labels: [], positiveRows: [], positiveGt: [] };
  targets.forEach((t, b) => {
    const G = t.labels.length;
    const matches = G === 0 ? new Int32Array(T).fill(BELOW_LOW_THRESHOLD) : matcher.match(boxIouHost(t.boxes, anchors), G, T);
    const labels = Array.from(matches, (m) => (m >= 0 ? 1 : m === BETWEEN_THRESHOLDS ? -1 : 0));
    const s = samplePositiveNegative(labels, batchSizePerImage, positiveFraction, rng);
    const chosen = [...s.positive, ...s.negative].sort((x, y) => x - y);
    for (const a of chosen) {
      out.rows.push(b * T + a);
      out.labels.push(labels[a]!);
      if (labels[a] === 1) (out.positiveRows.push(b * T + a), out.positiveGt.push(...t.boxes.subarray(4 * matches[a]!, 4 * matches[a]! + 4)));
    }
  });
  return out;
}

/**
 * torchvision `RegionProposalNetwork.compute_loss`: binary cross-entropy of the sampled anchors'
 * objectness (mean) and smooth-L1 (beta 1/9) of the positives' box codes, summed and divided by
 * the number of sampled anchors. Differentiable in `objectness` and `deltas`.
 * @param objectness `[B, T]` logits
 * @param deltas `[B, T, 4]`
 * @param anchors `[T, 4]`
 */
export function rpnLoss(
  objectness: tf.Tensor2D,
  deltas: tf.Tensor3D,
  anchors: tf.Tensor2D,
  samples: RpnSamples,
  coder: BoxCoder,
): { loss_objectness: tf.Scalar; loss_rpn_box_reg: tf.Scalar } {
  const T = anchors.shape[0];
  const rows = tf.tensor1d(Int32Array.from(samples.rows), 'int32');
  const logits = tf.gather(objectness.reshape([-1]), rows);
  const lossObjectness = binaryCrossEntropyWithLogits(logits, tf.tensor1d(samples.labels)).mean() as tf.Scalar;
  if (samples.positiveRows.length === 0) return { loss_objectness: lossObjectness, loss_rpn_box_reg: tf.scalar(0) };
  const P = samples.positiveRows.length;
  const pred = tf.gather(deltas.reshape([-1, 4]), tf.tensor1d(Int32Array.from(samples.positiveRows), 'int32')) as tf.Tensor2D;
  const anchorsPos = tf.gather(anchors, tf.tensor1d(Int32Array.from(samples.positiveRows.map((r) => r % T)), 'int32')) as tf.Tensor2D;
  const target = coder.encode(tf.tensor2d(samples.positiveGt, [P, 4]), anchorsPos);
  const boxLoss = smoothL1Loss(pred, target, { beta: 1 / 9, reduction: 'sum' }).div(Math.max(1, samples.rows.length)) as tf.Scalar;
  return { loss_objectness: lossObjectness, loss_rpn_box_reg: boxLoss };
}
