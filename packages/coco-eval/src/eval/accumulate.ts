/**
 * The accumulate part of COCOeval: per category, one stable merge of the per-image score-sorted
 * detections and one pass that counts true/false positives for every (maxDet, area, threshold).
 */
import { compareScores, EPS, FLAG_FP, FLAG_TP } from './match.js';

/**
 * Stable merge of runs that are each sorted best score first: the order numpy's stable argsort of
 * -score gives for their concatenation (equal scores keep concatenation order).
 */
export function mergeSortedRuns(
  src: Int32Array,
  dst: Int32Array,
  tmp: Int32Array,
  runStarts: Int32Array,
  runs: number,
  score: Float64Array,
): void {
  const n = runStarts[runs]!;
  if (runs <= 1) {
    dst.set(src.subarray(0, n));
    return;
  }
  let a = dst;
  let b = tmp;
  a.set(src.subarray(0, n));
  // run boundaries as a list; merge neighbours pairwise until one run is left
  let bounds = Array.from(runStarts.subarray(0, runs + 1));
  while (bounds.length > 2) {
    const next: number[] = [0];
    for (let r = 0; r + 1 < bounds.length; r += 2) {
      const lo = bounds[r]!;
      const mid = bounds[r + 1]!;
      const hi = r + 2 < bounds.length ? bounds[r + 2]! : mid;
      let i = lo;
      let j = mid;
      let o = lo;
      while (i < mid && j < hi) {
        // take from the right run only when strictly better: ties keep the left (earlier) one
        if (compareScores(score[a[j]!]!, score[a[i]!]!) < 0) b[o++] = a[j++]!;
        else b[o++] = a[i++]!;
      }
      while (i < mid) b[o++] = a[i++]!;
      while (j < hi) b[o++] = a[j++]!;
      next.push(hi);
    }
    bounds = next;
    const t = a;
    a = b;
    b = t;
  }
  if (a !== dst) dst.set(a.subarray(0, n));
}

/** Per (maxDet, area, threshold) counts of one category's pass, and each true positive's precision and score. */
export class Counts {
  /** [Q] detections counted for each maxDet (only the first M entries are used) */
  readonly n: Int32Array;
  readonly tp: Int32Array;
  readonly fp: Int32Array;
  /** [Q * stride] precision at the c-th true positive */
  readonly tpPr: Float64Array;
  /** [Q * stride] score of the c-th true positive */
  readonly tpScore: Float64Array;
  constructor(
    readonly Q: number,
    readonly stride: number,
  ) {
    this.n = new Int32Array(Q);
    this.tp = new Int32Array(Q);
    this.fp = new Int32Array(Q);
    this.tpPr = new Float64Array(Q * stride);
    this.tpScore = new Float64Array(Q * stride);
  }
}

/**
 * One pass over a category's detections in score order: cumulative true/false positive counts for
 * every (maxDet, area, threshold) at once; a detection counts for maxDet m when its rank in its
 * image is below maxDets[m].
 */
export function countFlags(
  flags: Uint8Array,
  rank: Int32Array,
  score: Float64Array,
  sorted: Int32Array,
  n: number,
  maxDets: Int32Array,
  AT: number,
  cnt: Counts,
): void {
  const M = maxDets.length;
  cnt.n.fill(0);
  cnt.tp.fill(0);
  cnt.fp.fill(0);
  const { tp, fp, tpPr, tpScore, stride } = cnt;
  for (let j = 0; j < n; j++) {
    const d = sorted[j]!;
    const r = rank[d]!;
    const base = d * AT;
    for (let m = 0; m < M; m++) {
      if (r >= maxDets[m]!) continue;
      cnt.n[m]!++;
      const qm = m * AT;
      for (let q = 0; q < AT; q++) {
        const f = flags[base + q]!;
        if (f === FLAG_TP) {
          const c = tp[qm + q]!++;
          const at = (qm + q) * stride + c;
          // pycocotools: tp / (fp + tp + eps) on the cumulative sums
          tpPr[at] = (c + 1) / (fp[qm + q]! + (c + 1) + EPS);
          tpScore[at] = score[d]!;
        } else if (f === FLAG_FP) fp[qm + q]!++;
      }
    }
  }
}

/**
 * pycocotools' precision/score at each recall threshold for one (t, k, a, m), from the true
 * positives alone: recall only rises at a true positive, and the precision envelope (running max
 * from the right) only takes values reached at true positives, so the answer equals pycocotools'
 * loop over all detections. Entries past the last reachable recall are 0 (its IndexError path).
 *
 * @param base index of r = 0 in precision/scores; `rStep` the stride of r
 * @param firstScore score of the best detection (pycocotools' value when index 0 already reaches the recall)
 */
export function fillPrecision(
  precision: Float64Array,
  scores: Float64Array,
  base: number,
  rStep: number,
  recThrs: number[],
  thrsAscending: boolean,
  cnt: Counts,
  q: number,
  n: number,
  npig: number,
  firstScore: number,
  firstIsTp: boolean,
): void {
  const ntp = cnt.tp[q]!;
  const off = q * cnt.stride;
  const pr = cnt.tpPr;
  for (let c = ntp - 1; c > 0; c--) if (pr[off + c]! > pr[off + c - 1]!) pr[off + c - 1] = pr[off + c]!;
  const rc0 = firstIsTp ? 1 / npig : 0;
  let reached = n > 0;
  let c = 0;
  for (let r = 0; r < recThrs.length; r++) {
    const idx = base + r * rStep;
    const thr = recThrs[r]!;
    if (reached && thr <= rc0) {
      // index 0 already reaches this recall: the envelope there is the max over everything
      precision[idx] = ntp > 0 ? pr[off]! : 0;
      scores[idx] = firstScore;
      continue;
    }
    if (reached) {
      if (!thrsAscending) c = 0;
      while (c < ntp && (c + 1) / npig < thr) c++;
      if (c >= ntp) reached = false;
    }
    precision[idx] = reached ? pr[off + c]! : 0;
    scores[idx] = reached ? cnt.tpScore[off + c]! : 0;
  }
}

