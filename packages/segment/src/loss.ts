/** Segmentation losses on NHWC logits. */
import * as tf from '@tensorflow/tfjs';

/**
 * Pixel-wise cross-entropy with an ignore label, as
 * `F.cross_entropy(logits, labels, ignore_index=255)` (mean over the non-ignored pixels).
 * Unlike PyTorch, a batch with no valid pixel gives 0 instead of NaN, so a crop that fell
 * entirely on void does not abort a run.
 *
 * @param logits `[B, H, W, K]` unnormalised scores.
 * @param labels `[B, H, W]` int32 class ids in [0, K) or `ignoreIndex`.
 */
export function segCrossEntropy(logits: tf.Tensor4D, labels: tf.Tensor3D, ignoreIndex = 255): tf.Scalar {
  const [b, h, w, k] = logits.shape;
  if (labels.rank !== 3 || labels.shape[0] !== b || labels.shape[1] !== h || labels.shape[2] !== w) {
    throw new Error(`segCrossEntropy: labels must be [${b}, ${h}, ${w}] to match logits [${logits.shape}], got [${labels.shape}]`);
  }
  return tf.tidy(() => {
    const lab = tf.cast(labels, 'int32');
    const valid = tf.notEqual(lab, ignoreIndex);
    const safe = tf.where(valid, lab, tf.zerosLike(lab));
    const logp = tf.logSoftmax(logits);
    const nll = tf.neg(tf.sum(tf.mul(tf.oneHot(safe, k), logp), -1));
    const mask = tf.cast(valid, 'float32');
    const count = tf.maximum(tf.sum(mask), 1);
    return tf.div(tf.sum(tf.mul(nll, mask)), count) as tf.Scalar;
  });
}
