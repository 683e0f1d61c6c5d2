/** Classification losses and metrics on logits `[B, C]` and integer labels `[B]`. */
import * as tf from '@tensorflow/tfjs';

/**
 * Cross-entropy with label smoothing, as `torch.nn.CrossEntropyLoss(label_smoothing=eps)`:
 * the target is `(1 - eps) * onehot + eps / C`, i.e.
 * `loss = (1 - eps) * NLL + eps * mean_c(-log p_c)`, averaged over the batch.
 *
 * @param logits `[B, C]` unnormalised scores.
 * @param labels `[B]` int32 class indices in [0, C).
 * @param smoothing eps in [0, 1).
 * @returns scalar loss.
 */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, smoothing = 0): tf.Scalar {
  if (logits.rank !== 2) throw new Error(`crossEntropy: logits must be [B, C], got [${logits.shape}]`);
  if (labels.rank !== 1 || labels.shape[0] !== logits.shape[0]) {
    throw new Error(`crossEntropy: labels must be [B=${logits.shape[0]}], got [${labels.shape}]`);
  }
  if (!(smoothing >= 0 && smoothing < 1)) throw new Error(`crossEntropy: smoothing must be in [0, 1), got ${smoothing}`);
  return tf.tidy(() => {
    const numClasses = logits.shape[1];
    const logp = tf.logSoftmax(logits);
    const onehot = tf.oneHot(tf.cast(labels, 'int32'), numClasses);
    const nll = tf.neg(tf.sum(tf.mul(onehot, logp), 1));
    if (smoothing === 0) return tf.mean(nll) as tf.Scalar;
    const uniform = tf.neg(tf.mean(logp, 1));
    return tf.mean(tf.add(tf.mul(nll, 1 - smoothing), tf.mul(uniform, smoothing))) as tf.Scalar;
  });
}

/**
 * Number of samples whose label is among the `k` highest logits (ties broken by index, as
 * `torch.topk`). Returns a plain number, so it is safe to call outside `tf.tidy`.
 */
export function topkCorrect(logits: tf.Tensor2D, labels: tf.Tensor1D | Int32Array | number[], k: number): number {
  const kk = Math.min(k, logits.shape[1]);
  const labelArr = labels instanceof tf.Tensor ? (labels.dataSync() as Int32Array) : labels;
  const idx = tf.tidy(() => tf.topk(logits, kk).indices);
  const top = idx.dataSync();
  idx.dispose();
  let correct = 0;
  for (let i = 0; i < logits.shape[0]; i++) {
    for (let j = 0; j < kk; j++) {
      if (top[i * kk + j] === Number(labelArr[i])) {
        correct++;
        break;
      }
    }
  }
  return correct;
}
