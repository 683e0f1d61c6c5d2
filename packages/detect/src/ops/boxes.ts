/**
 * Pure box operations, torchvision `ops/boxes.py` semantics.
 *
 * Box formats: `xyxy` = [x1, y1, x2, y2] (corners, x2 > x1 for a valid box),
 * `xywh` = [x1, y1, w, h] (COCO), `cxcywh` = [cx, cy, w, h]. Tensors are `[N, 4]` float32.
 * Areas use `(x2 - x1) * (y2 - y1)` without the legacy `+1`.
 */
import * as tf from '@tensorflow/tfjs';

/** Concatenates four `[N, 1]` columns into `[N, 4]`. */
function cat4(cols: tf.Tensor[], axis = 1): tf.Tensor2D {
  return tf.concat(cols, axis) as tf.Tensor2D;
}

/** A box format name as in `torchvision.ops.box_convert`. */
export type BoxFormat = 'xyxy' | 'xywh' | 'cxcywh';

function columns(boxes: tf.Tensor2D): [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D] {
  if (boxes.rank !== 2 || boxes.shape[1] !== 4) {
    throw new Error(`boxes must be [N, 4], got [${boxes.shape.join(', ')}]`);
  }
  return tf.split(boxes, 4, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
}

/** Converts `[N, 4]` boxes between formats. */
export function boxConvert(boxes: tf.Tensor2D, inFmt: BoxFormat, outFmt: BoxFormat): tf.Tensor2D {
  return tf.tidy((): tf.Tensor2D => {
    if (inFmt === outFmt) return boxes.clone();
    const [a, b, c, d] = columns(boxes);
    let x1: tf.Tensor2D, y1: tf.Tensor2D, x2: tf.Tensor2D, y2: tf.Tensor2D;
    if (inFmt === 'xyxy') [x1, y1, x2, y2] = [a, b, c, d];
    else if (inFmt === 'xywh') [x1, y1, x2, y2] = [a, b, a.add(c), b.add(d)];
    else [x1, y1, x2, y2] = [a.sub(c.mul(0.5)), b.sub(d.mul(0.5)), a.add(c.mul(0.5)), b.add(d.mul(0.5))];
    if (outFmt === 'xyxy') return cat4([x1, y1, x2, y2], 1);
    const w = x2.sub(x1);
    const h = y2.sub(y1);
    if (outFmt === 'xywh') return cat4([x1, y1, w, h], 1);
    return cat4([x1.add(w.mul(0.5)), y1.add(h.mul(0.5)), w, h], 1);
  });
}

/** Area of `[N, 4]` xyxy boxes, `[N]`. */
export function boxArea(boxes: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const [x1, y1, x2, y2] = columns(boxes);
    return x2.sub(x1).mul(y2.sub(y1)).reshape([-1]) as tf.Tensor1D;
  });
}

/** Pairwise intersection and union of `[N, 4]` and `[M, 4]` xyxy boxes, both `[N, M]`. */
function interUnion(a: tf.Tensor2D, b: tf.Tensor2D): { inter: tf.Tensor2D; union: tf.Tensor2D } {
  const [ax1, ay1, ax2, ay2] = columns(a);
  const [bx1, by1, bx2, by2] = columns(b);
  const w = tf.relu(tf.minimum(ax2, bx2.transpose()).sub(tf.maximum(ax1, bx1.transpose())));
  const h = tf.relu(tf.minimum(ay2, by2.transpose()).sub(tf.maximum(ay1, by1.transpose())));
  const inter = w.mul(h) as tf.Tensor2D;
  const union = boxArea(a).reshape([-1, 1]).add(boxArea(b).reshape([1, -1])).sub(inter) as tf.Tensor2D;
  return { inter, union };
}

/** Pairwise IoU of `[N, 4]` and `[M, 4]` xyxy boxes, `[N, M]` (torchvision `box_iou`). */
export function boxIou(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const { inter, union } = interUnion(a, b);
    return inter.div(union);
  });
}

/** Pairwise generalized IoU, `[N, M]` (torchvision `generalized_box_iou`). */
export function generalizedBoxIou(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const { inter, union } = interUnion(a, b);
    const iou = inter.div(union);
    const [ax1, ay1, ax2, ay2] = columns(a);
    const [bx1, by1, bx2, by2] = columns(b);
    const w = tf.relu(tf.maximum(ax2, bx2.transpose()).sub(tf.minimum(ax1, bx1.transpose())));
    const h = tf.relu(tf.maximum(ay2, by2.transpose()).sub(tf.minimum(ay1, by1.transpose())));
    const hull = w.mul(h);
    return iou.sub(hull.sub(union).div(hull)) as tf.Tensor2D;
  });
}

/** Clips `[N, 4]` xyxy boxes to an image of `[height, width]`. */
export function clipBoxesToImage(boxes: tf.Tensor2D, size: readonly [number, number]): tf.Tensor2D {
  return tf.tidy((): tf.Tensor2D => {
    const [x1, y1, x2, y2] = columns(boxes);
    const [h, w] = size;
    return cat4([x1.clipByValue(0, w), y1.clipByValue(0, h), x2.clipByValue(0, w), y2.clipByValue(0, h)], 1);
  });
}

/**
 * Pairwise IoU on host arrays, row-major `[N, M]`, same definition as {@link boxIou}. Used for
 * anchor matching, where no gradient is needed and a tight loop beats broadcasting tensor ops.
 * @param a flat `[N * 4]` xyxy
 * @param b flat `[M * 4]` xyxy
 */
export function boxIouHost(a: ArrayLike<number>, b: ArrayLike<number>): Float32Array {
  const n = a.length / 4;
  const m = b.length / 4;
  const out = new Float32Array(n * m);
  const areaB = new Float32Array(m);
  for (let j = 0; j < m; j++) areaB[j] = (b[4 * j + 2]! - b[4 * j]!) * (b[4 * j + 3]! - b[4 * j + 1]!);
  for (let i = 0; i < n; i++) {
    const [x1, y1, x2, y2] = [a[4 * i]!, a[4 * i + 1]!, a[4 * i + 2]!, a[4 * i + 3]!];
    const areaA = (x2 - x1) * (y2 - y1);
    for (let j = 0; j < m; j++) {
      const w = Math.min(x2, b[4 * j + 2]!) - Math.max(x1, b[4 * j]!);
      if (w <= 0) continue;
      const h = Math.min(y2, b[4 * j + 3]!) - Math.max(y1, b[4 * j + 1]!);
      if (h <= 0) continue;
      const inter = w * h;
      out[i * m + j] = inter / (areaA + areaB[j]! - inter);
    }
  }
  return out;
}

/** Indices of `[N, 4]` xyxy boxes (flat array) whose sides are both >= `minSize`. */
export function removeSmallBoxes(boxes: ArrayLike<number>, minSize: number): number[] {
  const keep: number[] = [];
  for (let i = 0; i < boxes.length / 4; i++) {
    if (boxes[4 * i + 2]! - boxes[4 * i]! >= minSize && boxes[4 * i + 3]! - boxes[4 * i + 1]! >= minSize) keep.push(i);
  }
  return keep;
}

function iouFlat(b: ArrayLike<number>, i: number, j: number): number {
  const w = Math.min(b[4 * i + 2]!, b[4 * j + 2]!) - Math.max(b[4 * i]!, b[4 * j]!);
  const h = Math.min(b[4 * i + 3]!, b[4 * j + 3]!) - Math.max(b[4 * i + 1]!, b[4 * j + 1]!);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const areaI = (b[4 * i + 2]! - b[4 * i]!) * (b[4 * i + 3]! - b[4 * i + 1]!);
  const areaJ = (b[4 * j + 2]! - b[4 * j]!) * (b[4 * j + 3]! - b[4 * j + 1]!);
  return inter / (areaI + areaJ - inter);
}

/**
 * Greedy non-maximum suppression (torchvision `nms`): boxes are visited by decreasing
 * score (stable for ties) and a box is dropped when its IoU with a kept box is
 * `> iouThreshold`. Runs on host arrays because no gradient flows through selection.
 * @param boxes flat `[N * 4]` xyxy
 * @param scores `[N]`
 * @returns kept indices, by decreasing score
 */
export function nms(boxes: ArrayLike<number>, scores: ArrayLike<number>, iouThreshold: number): number[] {
  const n = scores.length;
  if (boxes.length !== 4 * n) throw new Error(`nms: ${boxes.length / 4} boxes but ${n} scores`);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
  const removed = new Uint8Array(n);
  const keep: number[] = [];
  for (let a = 0; a < n; a++) {
    const i = order[a]!;
    if (removed[i]) continue;
    keep.push(i);
    for (let c = a + 1; c < n; c++) {
      const j = order[c]!;
      if (!removed[j] && iouFlat(boxes, i, j) > iouThreshold) removed[j] = 1;
    }
  }
  return keep;
}

/**
 * Per-category NMS (torchvision `batched_nms`): boxes of different `idxs` never
 * suppress each other. Implemented per category, which equals torchvision's
 * coordinate-offset trick.
 * @returns kept indices, by decreasing score
 */
export function batchedNms(
  boxes: ArrayLike<number>,
  scores: ArrayLike<number>,
  idxs: ArrayLike<number>,
  iouThreshold: number,
): number[] {
  const groups = new Map<number, number[]>();
  for (let i = 0; i < idxs.length; i++) {
    const g = groups.get(idxs[i]!) ?? [];
    g.push(i);
    groups.set(idxs[i]!, g);
  }
  const keep: number[] = [];
  for (const members of groups.values()) {
    const sub = new Float32Array(members.length * 4);
    members.forEach((m, k) => {
      for (let c = 0; c < 4; c++) sub[4 * k + c] = boxes[4 * m + c]!;
    });
    const subScores = members.map((m) => scores[m]!);
    for (const k of nms(sub, subScores, iouThreshold)) keep.push(members[k]!);
  }
  return keep.sort((a, b) => scores[b]! - scores[a]! || a - b);
}
