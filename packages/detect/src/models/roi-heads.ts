/**
 * Faster R-CNN box-head pieces that run outside the LayersModels (torchvision `roi_heads.py`):
 * RoI sampling for training, `fastrcnn_loss`, and `postprocess_detections`.
 */
import * as tf from '@tensorflow/tfjs';
import type { BoxCoder } from '../ops/box-coder.js';
import { batchedNms, boxIouHost } from '../ops/boxes.js';
import { smoothL1Loss } from '../ops/losses.js';
import { BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS, type Matcher } from '../ops/matcher.js';
import { samplePositiveNegative, type PermutationSource } from '../ops/sampler.js';
import type { Detections, ImageTargets } from './detector.js';

/** RoIs chosen for one training batch. */
export interface RoiSamples {
  /** Per image, `[R_i * 4]` sampled RoIs (proposals and ground truths), ascending candidate index. */
  boxes: Float32Array[];
  /** `[R]` over all images: 0 background, `c + 1` for contiguous class c. */
  labels: Int32Array;
  /** `[R * 4]` box codes of each RoI's matched ground truth (zeros for images without boxes). */
  regressionTargets: Float32Array;
}

/**
 * torchvision `RoIHeads.select_training_samples`: ground-truth boxes are appended to each image's
 * proposals, candidates are matched (IoU >= high: the gt's class; < low: background), and
 * `batchSizePerImage` are sampled at `positiveFraction` positives, kept in candidate order.
 */
export function selectTrainingSamples(
  proposals: readonly Float32Array[],
  targets: readonly ImageTargets[],
  matcher: Matcher,
  coder: BoxCoder,
  batchSizePerImage: number,
  positiveFraction: number,
  rng: PermutationSource,
): RoiSamples {
  const boxes: Float32Array[] = [];
  const labels: number[] = [];
  const matchedGt: number[] = [];
  const references: number[] = [];
  targets.forEach((t, b) => {
    const props = proposals[b]!;
    const cand = new Float32Array(props.length + t.boxes.length);
    cand.set(props);
    cand.set(t.boxes, props.length);
    const N = cand.length / 4;
    const G = t.labels.length;
    const matches = G === 0 ? new Int32Array(N).fill(BELOW_LOW_THRESHOLD) : matcher.match(boxIouHost(t.boxes, cand), G, N);
    const candLabels = Array.from(matches, (m) => (m >= 0 ? t.labels[m]! + 1 : m === BETWEEN_THRESHOLDS ? -1 : 0));
    const s = samplePositiveNegative(candLabels, batchSizePerImage, positiveFraction, rng);
    const chosen = [...s.positive, ...s.negative].sort((x, y) => x - y);
    const out = new Float32Array(chosen.length * 4);
    chosen.forEach((c, j) => {
      const box = cand.subarray(4 * c, 4 * c + 4);
      out.set(box, 4 * j);
      labels.push(candLabels[c]!);
      references.push(...box);
      // torchvision clamps negative match codes to gt 0; an image without gt gets zero boxes
      const g = Math.max(matches[c]!, 0);
      matchedGt.push(...(G ? t.boxes.subarray(4 * g, 4 * g + 4) : [0, 0, 0, 0]));
    });
    boxes.push(out);
  });
  const R = labels.length;
  const regressionTargets = R === 0 ? new Float32Array(0) : tf.tidy(() => coder.encode(tf.tensor2d(matchedGt, [R, 4]), tf.tensor2d(references, [R, 4])).dataSync() as Float32Array);
  return { boxes, labels: Int32Array.from(labels), regressionTargets };
}

/**
 * torchvision `fastrcnn_loss`: softmax cross-entropy over all sampled RoIs (mean) and smooth-L1
 * (beta 1/9) between the positives' own-class box deltas and their targets, summed and divided by
 * the number of sampled RoIs. Differentiable in both predictions.
 * @param classLogits `[R, K + 1]`
 * @param boxRegression `[R, 4 (K + 1)]`
 */
export function fastRcnnLoss(
  classLogits: tf.Tensor2D,
  boxRegression: tf.Tensor2D,
  samples: Pick<RoiSamples, 'labels' | 'regressionTargets'>,
): { loss_classifier: tf.Scalar; loss_box_reg: tf.Scalar } {
  const [R, K1] = classLogits.shape;
  const labels = samples.labels;
  const labelT = tf.tensor1d(labels, 'int32');
  const classifier = tf.losses.softmaxCrossEntropy(tf.oneHot(labelT, K1), classLogits) as tf.Scalar;
  const pos: number[] = [];
  labels.forEach((l, i) => l > 0 && pos.push(i));
  if (pos.length === 0) return { loss_classifier: classifier, loss_box_reg: tf.scalar(0) };
  // the deltas of each positive RoI's own class: rows i*(K+1) + label of [R*(K+1), 4]
  const rows = tf.tensor1d(Int32Array.from(pos, (i) => i * K1 + labels[i]!), 'int32');
  const pred = tf.gather(boxRegression.reshape([R * K1, 4]), rows) as tf.Tensor2D;
  const target = tf.gather(tf.tensor2d(samples.regressionTargets, [R, 4]), tf.tensor1d(Int32Array.from(pos), 'int32'));
  const boxReg = smoothL1Loss(pred, target, { beta: 1 / 9, reduction: 'sum' }).div(R) as tf.Scalar;
  return { loss_classifier: classifier, loss_box_reg: boxReg };
}

/** Settings of {@link postprocessDetections} (torchvision: 0.05, 0.5, 100). */
export interface BoxPostprocessOptions {
  scoreThreshold: number;
  nmsThreshold: number;
  detectionsPerImage: number;
}

/**
 * torchvision `RoIHeads.postprocess_detections` for one image: softmax scores, per-class decoding
 * against the proposals, clipping, background removed, score threshold, boxes with a side below
 * 1e-2 removed, per-class NMS, the best `detectionsPerImage`; finally boxes are scaled from the
 * resized frame to `original` (torchvision's `transform.postprocess`).
 * @param classLogits `[R, K + 1]`
 * @param boxRegression `[R, 4 (K + 1)]`
 * @param proposals `[R * 4]`
 * @param imageSize `[h, w]` the boxes are clipped to
 * @param original `[h, w]` the detections are scaled to (equal to `imageSize` for no scaling)
 */
export function postprocessDetections(
  classLogits: tf.Tensor2D,
  boxRegression: tf.Tensor2D,
  proposals: Float32Array,
  imageSize: readonly [number, number],
  original: readonly [number, number],
  coder: BoxCoder,
  opts: BoxPostprocessOptions,
): Detections {
  const [R, K1] = classLogits.shape;
  const [probs, boxes] = tf.tidy(() => {
    const ref = tf.tile(tf.tensor2d(proposals, [R, 4]), [1, K1]).reshape([R * K1, 4]) as tf.Tensor2D;
    return [tf.softmax(classLogits).dataSync() as Float32Array, coder.decode(boxRegression.reshape([R * K1, 4]) as tf.Tensor2D, ref).dataSync() as Float32Array];
  });
  const [h, w] = imageSize;
  const cand: number[] = [];
  for (let r = 0; r < R; r++) {
    for (let c = 1; c < K1; c++) {
      const i = r * K1 + c;
      boxes[4 * i] = Math.min(Math.max(boxes[4 * i]!, 0), w);
      boxes[4 * i + 1] = Math.min(Math.max(boxes[4 * i + 1]!, 0), h);
      boxes[4 * i + 2] = Math.min(Math.max(boxes[4 * i + 2]!, 0), w);
      boxes[4 * i + 3] = Math.min(Math.max(boxes[4 * i + 3]!, 0), h);
      const big = boxes[4 * i + 2]! - boxes[4 * i]! >= 1e-2 && boxes[4 * i + 3]! - boxes[4 * i + 1]! >= 1e-2;
      if (probs[i]! > opts.scoreThreshold && big) cand.push(i);
    }
  }
  const sub = new Float32Array(cand.length * 4);
  cand.forEach((i, j) => sub.set(boxes.subarray(4 * i, 4 * i + 4), 4 * j));
  const scores = cand.map((i) => probs[i]!);
  const labels = cand.map((i) => (i % K1) - 1);
  const keep = batchedNms(sub, scores, labels, opts.nmsThreshold).slice(0, opts.detectionsPerImage);
  const sx = original[1] / w;
  const sy = original[0] / h;
  return {
    boxes: Float32Array.from(keep.flatMap((k) => [sub[4 * k]! * sx, sub[4 * k + 1]! * sy, sub[4 * k + 2]! * sx, sub[4 * k + 3]! * sy])),
    scores: Float32Array.from(keep, (k) => scores[k]!),
    labels: Int32Array.from(keep, (k) => labels[k]!),
  };
}
