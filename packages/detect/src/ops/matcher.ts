/**
 * Ground-truth to prediction assignment (torchvision `det_utils.Matcher`).
 */

/** Match value for predictions whose best IoU is below the low threshold. */
export const BELOW_LOW_THRESHOLD = -1;
/** Match value for predictions whose best IoU is between the thresholds (ignored in losses). */
export const BETWEEN_THRESHOLDS = -2;

/** Options of {@link Matcher}. */
export interface MatcherOptions {
  /** IoU at or above which a prediction is foreground. */
  highThreshold: number;
  /** IoU below which a prediction is background; between the two it is ignored. */
  lowThreshold: number;
  /**
   * Also match, for each ground truth, the predictions with its highest IoU (ties included)
   * even if that IoU is low, so that every ground truth gets at least one prediction.
   */
  allowLowQualityMatches?: boolean;
}

/** Assigns each of N predictions to one of M ground-truth boxes or to a negative code. */
export class Matcher {
  readonly highThreshold: number;
  readonly lowThreshold: number;
  readonly allowLowQualityMatches: boolean;

  constructor(opts: MatcherOptions) {
    if (opts.lowThreshold > opts.highThreshold) {
      throw new Error(`Matcher: lowThreshold ${opts.lowThreshold} > highThreshold ${opts.highThreshold}`);
    }
    this.highThreshold = opts.highThreshold;
    this.lowThreshold = opts.lowThreshold;
    this.allowLowQualityMatches = opts.allowLowQualityMatches ?? false;
  }

  /**
   * @param quality row-major `[M, N]` match quality (IoU), M ground truths x N predictions
   * @returns `[N]`: a ground-truth index in `[0, M)`, {@link BELOW_LOW_THRESHOLD} or {@link BETWEEN_THRESHOLDS}
   */
  match(quality: ArrayLike<number>, m: number, n: number): Int32Array {
    if (quality.length !== m * n) throw new Error(`Matcher: quality has ${quality.length} values, expected ${m}x${n}`);
    if (m === 0) throw new Error('Matcher: no ground-truth boxes for an image during training');
    if (n === 0) throw new Error('Matcher: no predictions (anchors/proposals) for an image');
    const best = new Int32Array(n);
    const bestVal = new Float32Array(n).fill(-Infinity);
    for (let g = 0; g < m; g++) {
      for (let p = 0; p < n; p++) {
        const v = quality[g * n + p]!;
        if (v > bestVal[p]!) {
          bestVal[p] = v;
          best[p] = g;
        }
      }
    }
    const matches = new Int32Array(n);
    for (let p = 0; p < n; p++) {
      const v = bestVal[p]!;
      matches[p] = v < this.lowThreshold ? BELOW_LOW_THRESHOLD : v < this.highThreshold ? BETWEEN_THRESHOLDS : best[p]!;
    }
    if (this.allowLowQualityMatches) this.restoreLowQualityMatches(matches, best, quality, m, n);
    return matches;
  }

  /** For each ground truth, its highest-IoU predictions (ties included) get their best match back. */
  private restoreLowQualityMatches(matches: Int32Array, best: Int32Array, quality: ArrayLike<number>, m: number, n: number): void {
    for (let g = 0; g < m; g++) {
      let highest = -Infinity;
      for (let p = 0; p < n; p++) highest = Math.max(highest, quality[g * n + p]!);
      for (let p = 0; p < n; p++) if (quality[g * n + p] === highest) matches[p] = best[p]!;
    }
  }
}
