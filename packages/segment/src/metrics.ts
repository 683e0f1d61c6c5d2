/**
 * Semantic-segmentation metrics from a confusion matrix accumulated over a whole split,
 * with the conventions of the standard evaluators (torchvision `references/segmentation`
 * `ConfusionMatrix`, mmsegmentation `intersect_and_union` / `total_area_to_metrics`):
 *
 * - rows are ground truth, columns are predictions: `matrix[gt * numClasses + pred]`;
 * - pixels whose ground truth is the ignore label (255 by default) are not counted;
 * - per-class IoU = TP / (TP + FP + FN); a class absent from both prediction and ground
 *   truth over the whole split has IoU NaN and is excluded from the mean (nanmean);
 * - per-class accuracy = TP / (TP + FN); NaN (and excluded from the mean) when the class
 *   never occurs in the ground truth;
 * - pixel accuracy = trace / total counted pixels.
 */

/** Metrics of one split. Per-class arrays are indexed by class id; NaN means "undefined". */
export interface SegMetrics {
  /** Mean IoU over classes present in prediction or ground truth. */
  mIoU: number;
  /** Fraction of counted pixels predicted correctly. */
  pixelAccuracy: number;
  /** Mean per-class accuracy (recall) over classes present in the ground truth. */
  meanAccuracy: number;
  /** `[numClasses]` IoU per class, NaN for classes absent from both prediction and ground truth. */
  iou: number[];
  /** `[numClasses]` accuracy per class, NaN for classes absent from the ground truth. */
  accuracy: number[];
  /** Pixels counted (ground truth not ignore). */
  numPixels: number;
}

/** Confusion matrix accumulated image by image over a split. */
export class ConfusionMatrix {
  /** `[numClasses * numClasses]`, row = ground truth, column = prediction. */
  readonly matrix: Float64Array;

  /**
   * @param numClasses number of real classes (ids 0..numClasses-1).
   * @param ignoreIndex ground-truth label that is not counted (255 as in VOC/Cityscapes).
   */
  constructor(
    readonly numClasses: number,
    readonly ignoreIndex = 255,
  ) {
    if (!Number.isInteger(numClasses) || numClasses < 1) {
      throw new Error(`ConfusionMatrix: numClasses must be a positive integer, got ${numClasses}`);
    }
    this.matrix = new Float64Array(numClasses * numClasses);
  }

  /**
   * Adds one image (or a batch flattened the same way).
   * @param gt ground-truth class ids, ignore label allowed.
   * @param pred predicted class ids, same length, each in `[0, numClasses)`.
   * @param source name used in error messages (e.g. the mask file).
   */
  update(gt: ArrayLike<number>, pred: ArrayLike<number>, source = 'input'): void {
    if (gt.length !== pred.length) {
      throw new Error(`${source}: ground truth has ${gt.length} pixels but the prediction has ${pred.length}`);
    }
    const n = this.numClasses;
    for (let i = 0; i < gt.length; i++) {
      const g = gt[i]!;
      if (g === this.ignoreIndex) continue;
      const p = pred[i]!;
      if (!(g >= 0 && g < n && Number.isInteger(g))) {
        throw new Error(`${source}: ground-truth class id ${g} at pixel ${i} is outside [0, ${n - 1}] and is not the ignore label ${this.ignoreIndex}`);
      }
      if (!(p >= 0 && p < n && Number.isInteger(p))) {
        throw new Error(`${source}: predicted class id ${p} at pixel ${i} is outside [0, ${n - 1}]`);
      }
      this.matrix[g * n + p]! += 1;
    }
  }

  /** Adds another matrix of the same size (e.g. from another worker). */
  merge(other: ConfusionMatrix): void {
    if (other.numClasses !== this.numClasses) {
      throw new Error(`ConfusionMatrix.merge: ${other.numClasses} classes vs ${this.numClasses}`);
    }
    for (let i = 0; i < this.matrix.length; i++) this.matrix[i]! += other.matrix[i]!;
  }

  /** Clears all counts. */
  reset(): void {
    this.matrix.fill(0);
  }

  /** Metrics of everything accumulated so far. */
  compute(): SegMetrics {
    return metricsFromConfusion(this.matrix, this.numClasses);
  }
}

/**
 * Metrics from a `[numClasses * numClasses]` confusion matrix (row = ground truth).
 */
export function metricsFromConfusion(matrix: ArrayLike<number>, numClasses: number): SegMetrics {
  const n = numClasses;
  if (matrix.length !== n * n) throw new Error(`confusion matrix has ${matrix.length} entries, expected ${n}x${n}`);
  const iou: number[] = [];
  const accuracy: number[] = [];
  let total = 0;
  let correct = 0;
  for (let c = 0; c < n; c++) {
    let gtCount = 0;
    let predCount = 0;
    for (let k = 0; k < n; k++) {
      gtCount += matrix[c * n + k]!;
      predCount += matrix[k * n + c]!;
    }
    const tp = matrix[c * n + c]!;
    const union = gtCount + predCount - tp;
    iou.push(union > 0 ? tp / union : NaN);
    accuracy.push(gtCount > 0 ? tp / gtCount : NaN);
    total += gtCount;
    correct += tp;
  }
  return {
    mIoU: nanMean(iou),
    pixelAccuracy: total > 0 ? correct / total : NaN,
    meanAccuracy: nanMean(accuracy),
    iou,
    accuracy,
    numPixels: total,
  };
}

/** Mean of the non-NaN values; NaN when there are none. */
export function nanMean(values: readonly number[]): number {
  let sum = 0;
  let count = 0;
  for (const v of values) {
    if (Number.isNaN(v)) continue;
    sum += v;
    count++;
  }
  return count > 0 ? sum / count : NaN;
}

/**
 * A printable table: one row per class (name, IoU %, accuracy %), then the summary.
 * NaN entries print as `-` (class absent, excluded from the means).
 */
export function formatMetricsTable(m: SegMetrics, classNames: readonly string[]): string {
  const pct = (v: number) => (Number.isNaN(v) ? '     -' : (100 * v).toFixed(2).padStart(6));
  const width = Math.max(5, ...classNames.map((s) => s.length));
  const lines = [`${'class'.padEnd(width)}    IoU    Acc`];
  m.iou.forEach((v, c) => lines.push(`${(classNames[c] ?? String(c)).padEnd(width)} ${pct(v)} ${pct(m.accuracy[c]!)}`));
  lines.push(`mIoU ${pct(m.mIoU)}  aAcc ${pct(m.pixelAccuracy)}  mAcc ${pct(m.meanAccuracy)}  (${m.numPixels} pixels)`);
  return lines.join('\n');
}

/** Metrics as plain JSON (NaN -> null, since JSON has no NaN). */
export function metricsToJson(m: SegMetrics, classNames?: readonly string[]): Record<string, unknown> {
  const j = (v: number) => (Number.isNaN(v) ? null : v);
  return {
    mIoU: j(m.mIoU),
    pixelAccuracy: j(m.pixelAccuracy),
    meanAccuracy: j(m.meanAccuracy),
    numPixels: m.numPixels,
    perClass: m.iou.map((v, c) => ({ id: c, name: classNames?.[c] ?? String(c), iou: j(v), accuracy: j(m.accuracy[c]!) })),
  };
}
