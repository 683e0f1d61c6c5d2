/**
 * Detection losses with torchvision's definitions. All return per-element losses
 * (`reduction: 'none'`) or their sum; callers normalise (e.g. by the number of foreground anchors).
 */
import * as tf from '@tensorflow/tfjs';

/** How a loss is reduced. */
export type Reduction = 'none' | 'sum' | 'mean';

function reduce<T extends tf.Tensor>(loss: T, reduction: Reduction): tf.Tensor {
  if (reduction === 'sum') return loss.sum();
  if (reduction === 'mean') return loss.mean();
  return loss;
}

/** Numerically stable `BCEWithLogits(x, t)` = `max(x, 0) - x*t + log(1 + exp(-|x|))`. */
export function binaryCrossEntropyWithLogits(logits: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.relu(logits).sub(logits.mul(targets)).add(tf.log1p(tf.exp(tf.neg(tf.abs(logits))))));
}

/**
 * Sigmoid focal loss (Lin et al. 2017; torchvision `sigmoid_focal_loss`):
 * `alpha_t * (1 - p_t)^gamma * BCE(x, t)`; `alpha < 0` disables the weighting.
 * @param logits any shape
 * @param targets same shape, 0/1 (or soft) labels
 */
export function sigmoidFocalLoss(
  logits: tf.Tensor,
  targets: tf.Tensor,
  opts: { alpha?: number; gamma?: number; reduction?: Reduction } = {},
): tf.Tensor {
  const { alpha = 0.25, gamma = 2, reduction = 'none' } = opts;
  return tf.tidy(() => {
    const p = tf.sigmoid(logits);
    const ce = binaryCrossEntropyWithLogits(logits, targets);
    const pT = p.mul(targets).add(tf.sub(1, p).mul(tf.sub(1, targets)));
    let loss = ce.mul(tf.pow(tf.sub(1, pT), gamma));
    if (alpha >= 0) loss = loss.mul(targets.mul(alpha).add(tf.sub(1, targets).mul(1 - alpha)));
    return reduce(loss, reduction);
  });
}

/** Smooth-L1 (Huber with transition `beta`, torch `smooth_l1_loss`); `beta = 0` is plain L1. */
export function smoothL1Loss(input: tf.Tensor, target: tf.Tensor, opts: { beta?: number; reduction?: Reduction } = {}): tf.Tensor {
  const { beta = 1, reduction = 'none' } = opts;
  return tf.tidy(() => {
    const n = tf.abs(input.sub(target));
    if (beta === 0) return reduce(n, reduction);
    // q = min(n, beta): 0.5 q^2 / beta + (n - q) is the piecewise definition without a
    // comparison op, which has no gradient in tfjs
    const q = tf.minimum(n, beta);
    const loss = q.square().mul(0.5 / beta).add(n.sub(q));
    return reduce(loss, reduction);
  });
}

/** Plain L1 (torch `l1_loss`). */
export function l1Loss(input: tf.Tensor, target: tf.Tensor, reduction: Reduction = 'none'): tf.Tensor {
  return tf.tidy(() => reduce(tf.abs(input.sub(target)), reduction));
}

/**
 * Generalized IoU loss `1 - GIoU` of paired `[N, 4]` xyxy boxes
 * (torchvision `generalized_box_iou_loss`, with its `eps`).
 */
export function generalizedBoxIouLoss(
  boxes1: tf.Tensor2D,
  boxes2: tf.Tensor2D,
  opts: { eps?: number; reduction?: Reduction } = {},
): tf.Tensor {
  const { eps = 1e-7, reduction = 'none' } = opts;
  return tf.tidy(() => {
    const [x1, y1, x2, y2] = tf.split(boxes1, 4, 1) as tf.Tensor2D[];
    const [u1, v1, u2, v2] = tf.split(boxes2, 4, 1) as tf.Tensor2D[];
    const ix1 = tf.maximum(x1!, u1!);
    const iy1 = tf.maximum(y1!, v1!);
    const ix2 = tf.minimum(x2!, u2!);
    const iy2 = tf.minimum(y2!, v2!);
    // relu * relu equals torchvision's masked product, values and gradients alike
    const inter = tf.relu(ix2.sub(ix1)).mul(tf.relu(iy2.sub(iy1)));
    const union = x2!.sub(x1!).mul(y2!.sub(y1!)).add(u2!.sub(u1!).mul(v2!.sub(v1!))).sub(inter);
    const iou = inter.div(union.add(eps));
    const hull = tf.maximum(x2!, u2!).sub(tf.minimum(x1!, u1!)).mul(tf.maximum(y2!, v2!).sub(tf.minimum(y1!, v1!)));
    const giou = iou.sub(hull.sub(union).div(hull.add(eps)));
    return reduce(tf.sub(1, giou).reshape([-1]), reduction);
  });
}
