/**
 * COCOeval (pycocotools `cocoeval.py`) for bbox and segm, with the same matching rules, sort order
 * and arithmetic, on flat typed arrays.
 *
 * Shapes (pycocotools' names): T = iouThrs, R = recThrs, K = categories (1 if !useCats),
 * A = area ranges, M = maxDets, I = images.
 * - evaluate(): per (category k, image i) group, detections sorted by score (stable) and cut to
 *   maxDets[-1]; for every area range a and threshold t each detection gets a flag
 *   (true positive / false positive / ignored), stored detection-major as `flags[(d * A + a) * T + t]`.
 * - accumulate(): `precision` [T,R,K,A,M], `recall` [T,K,A,M], `scores` [T,R,K,A,M] (C order,
 *   -1 where a setting has no ground truth), exactly pycocotools' `eval` arrays.
 * - summarize(): the 12 standard numbers and the printed table.
 */
import type { AnnotationTable } from './coco.js';
import { COCO } from './coco.js';
import { bbIou, rleIou, type Rle } from './mask.js';
import { Params, type IouType } from './params.js';
import { Counts, countFlags, fillPrecision, mergeSortedRuns } from './eval/accumulate.js';
import { computeOks, FLAG_TP, MatchScratch, matchGroup, sortAndCutDetections, stableScoreOrder } from './eval/match.js';
import { formatLine, meanValid, summarizeOne } from './eval/summary.js';

export { meanValid, pairwiseSum, pyFixed } from './eval/summary.js';


/** Per-image, per-category result as pycocotools' `evalImgs` entries. */
export interface EvalImg {
  image_id: number;
  category_id: number;
  aRng: [number, number];
  maxDet: number;
  /** [D] detection ids, best score first */
  dtIds: number[];
  /** [G] ground-truth ids, non-ignored first */
  gtIds: number[];
  /** [T][D] matched gt id or 0 */
  dtMatches: number[][];
  /** [T][G] matched dt id or 0 */
  gtMatches: number[][];
  dtScores: number[];
  /** [G] 0/1 */
  gtIgnore: number[];
  /** [T][D] 0/1 */
  dtIgnore: number[][];
}

/** pycocotools' `eval` dictionary. */
export interface EvalResult {
  params: Params;
  /** [T, R, K, A, M] */
  counts: [number, number, number, number, number];
  date: string;
  /** [T, R, K, A, M] C-order */
  precision: Float64Array;
  /** [T, K, A, M] C-order */
  recall: Float64Array;
  /** [T, R, K, A, M] C-order: score at each recall threshold */
  scores: Float64Array;
}

/** AP/AR of one category (area 'all', last maxDets), as detectron2's per-category table computes them. */
export interface CategoryResult {
  catId: number;
  name: string;
  /** mean precision over IoU .50:.95 (-1 if the category has no ground truth) */
  ap: number;
  ap50: number;
  ap75: number;
  /** mean recall over IoU .50:.95 */
  ar: number;
}

/** Options of {@link COCOeval.summarize}. */
export interface SummarizeOptions {
  /** where table lines go (default console.log); null prints nothing */
  log?: ((line: string) => void) | null;
}

/** Internal: what evaluate() leaves for accumulate(). */
interface EvalState {
  params: Params;
  /** ids of the evaluated categories, or [-1] */
  catIds: number[];
  K: number;
  I: number;
  A: number;
  T: number;
  /** [K*I] 1 when the group has gt or dt (pycocotools' evalImgs entry is not None) */
  nonEmpty: Uint8Array;
  /** [K*I + 1] start of each group's detections in the dt arrays */
  dtStart: Int32Array;
  /** [Ndt] scores, sorted descending within each group */
  dtScore: Float64Array;
  /** [Ndt] rank of each detection within its group (0 = best) */
  dtRank: Int32Array;
  /** [Ndt*A*T] FLAG_TP / FLAG_FP / 0 (ignored), `flags[(d * A + a) * T + t]` */
  flags: Uint8Array;
  /** [K*I*A] non-ignored gt count of each group and area */
  npig: Int32Array;
}

/** Groups rows of an annotation table by (category, image), each group in file order. */
interface Groups {
  /** [groups + 1] */
  start: Int32Array;
  /** row indices */
  rows: Int32Array;
}

/** Evaluation of detections against ground truth, pycocotools' COCOeval. */
export class COCOeval {
  readonly cocoGt: COCO;
  readonly cocoDt: COCO;
  params: Params;
  /** accumulated arrays, set by accumulate() */
  eval: EvalResult | null = null;
  /** the 12 summary numbers, set by summarize() */
  stats: number[] = [];
  private state: EvalState | null = null;

  constructor(cocoGt: COCO, cocoDt: COCO, iouType: IouType = 'segm') {
    this.cocoGt = cocoGt;
    this.cocoDt = cocoDt;
    this.params = new Params(iouType);
    this.params.imgIds = [...cocoGt.getImgIds()].sort((a, b) => a - b);
    this.params.catIds = [...cocoGt.getCatIds()].sort((a, b) => a - b);
  }

  /** Per-image evaluation (pycocotools `evaluate`); returns the elapsed seconds. */
  evaluate(): number {
    const tic = performance.now();
    const p = this.params;
    p.imgIds = uniqueSorted(p.imgIds);
    if (p.useCats) p.catIds = uniqueSorted(p.catIds);
    p.maxDets = [...p.maxDets].sort((a, b) => a - b);
    checkParams(p);
    const catIds = p.useCats ? p.catIds : [-1];
    const K = catIds.length;
    const I = p.imgIds.length;
    const A = p.areaRng.length;
    const T = p.iouThrs.length;
    const maxDet = p.maxDets[p.maxDets.length - 1]!;

    const gtGroups = this.groupRows(this.cocoGt.table, p);
    const dtGroups = this.groupRows(this.cocoDt.table, p);
    const dtRows = sortAndCutDetections(dtGroups, this.cocoDt.table.score, maxDet);

    const nonEmpty = new Uint8Array(K * I);
    const dtStart = new Int32Array(K * I + 1);
    for (let g = 0; g < K * I; g++) dtStart[g + 1] = dtStart[g]! + dtRows.count[g]!;
    const ndt = dtStart[K * I]!;
    const dtScore = new Float64Array(ndt);
    const dtRank = new Int32Array(ndt);
    const flags = new Uint8Array(ndt * A * T);
    const npig = new Int32Array(K * I * A);

    const gtT = this.cocoGt.table;
    const dtT = this.cocoDt.table;
    const scratch = new MatchScratch();
    const AT = A * T;
    const kp = p.iouType === 'keypoints';
    for (let g = 0; g < K * I; g++) {
      const gs = gtGroups.start[g]!;
      const G = gtGroups.start[g + 1]! - gs;
      const Dall = dtGroups.start[g + 1]! - dtGroups.start[g]!;
      if (G === 0 && Dall === 0) continue;
      nonEmpty[g] = 1;
      const gtRows = gtGroups.rows.subarray(gs, gs + G);
      const d0 = dtStart[g]!;
      const dRows = dtRows.rows.subarray(dtRows.start[g]!, dtRows.start[g]! + dtRows.count[g]!);
      const D = dRows.length;
      for (let d = 0; d < D; d++) {
        dtScore[d0 + d] = dtT.score[dRows[d]!]!;
        dtRank[d0 + d] = d;
      }
      const ious = this.computeIoU(gtRows, dRows, scratch);
      for (let a = 0; a < A; a++) {
        // this group's detections start at flags[d0 * A * T]; area a's block is at offset a * T
        npig[g * A + a] = matchGroup(gtT, dtT, gtRows, dRows, ious, p.areaRng[a]!, p.iouThrs, scratch, flags, d0 * AT + a * T, AT, false, kp);
      }
    }
    this.state = { params: p.clone(), catIds, K, I, A, T, nonEmpty, dtStart, dtScore, dtRank, flags, npig };
    this.eval = null;
    return (performance.now() - tic) / 1000;
  }

  /**
   * One image/category/area result in pycocotools' `evalImgs` form (null where pycocotools has None).
   * Computed on demand with the same code evaluate() uses, so the full list is never held in memory.
   */
  evaluateImg(imgId: number, catId: number, aRng: [number, number], maxDet: number): EvalImg | null {
    const p = this.params;
    const catIds = p.useCats ? [catId] : p.catIds;
    const gtRows = this.rowsOf(this.cocoGt.table, imgId, catIds);
    const dtAll = this.rowsOf(this.cocoDt.table, imgId, catIds);
    if (gtRows.length === 0 && dtAll.length === 0) return null;
    const score = this.cocoDt.table.score;
    const order = stableScoreOrder(dtAll, score);
    const dRows = order.subarray(0, Math.min(order.length, p.maxDets[p.maxDets.length - 1]!, maxDet));
    // IoU rows of the first maxDet detections (pycocotools computes maxDets[-1] rows, then reads these)
    const scratch = new MatchScratch();
    const iousCut = this.computeIoU(gtRows, dRows, scratch).slice();
    const T0 = p.iouThrs.length;
    const flags = new Uint8Array(dRows.length * T0);
    matchGroup(this.cocoGt.table, this.cocoDt.table, gtRows, dRows, iousCut, aRng, p.iouThrs, scratch, flags, 0, T0, true, p.iouType === 'keypoints');
    const m = scratch;
    const gtT = this.cocoGt.table;
    const dtT = this.cocoDt.table;
    const T = p.iouThrs.length;
    const D = dRows.length;
    const G = gtRows.length;
    const gtSorted = Array.from(m.gtOrder.subarray(0, G), (j) => gtRows[j]!);
    return {
      image_id: imgId,
      category_id: catId,
      aRng,
      maxDet,
      dtIds: Array.from(dRows, (r) => dtT.id[r]!),
      gtIds: gtSorted.map((r) => gtT.id[r]!),
      dtMatches: range(T).map((t) => range(D).map((d) => (m.dtMatch[t * D + d]! >= 0 ? gtT.id[gtSorted[m.dtMatch[t * D + d]!]!]! : 0))),
      gtMatches: range(T).map((t) => range(G).map((j) => m.gtm[t * G + j]!)),
      dtScores: Array.from(dRows, (r) => score[r]!),
      gtIgnore: Array.from(m.gtIg.subarray(0, G)),
      dtIgnore: range(T).map((t) => range(D).map((d) => (flags[d * T + t] === 0 ? 1 : 0))),
    };
  }

  /** Accumulates per-image results into precision/recall (pycocotools `accumulate`); returns seconds. */
  accumulate(): number {
    const tic = performance.now();
    const s = this.state;
    if (!s) throw new Error('COCOeval.accumulate: run evaluate() first');
    const p = s.params;
    const { K, I, A, T } = s;
    const R = p.recThrs.length;
    const M = p.maxDets.length;
    const precision = new Float64Array(T * R * K * A * M).fill(-1);
    const recall = new Float64Array(T * K * A * M).fill(-1);
    const scores = new Float64Array(T * R * K * A * M).fill(-1);
    const AT = A * T;
    const maxN = maxGroupSpan(s, K, I);
    const conc = new Int32Array(maxN);
    const sorted = new Int32Array(maxN);
    const tmp = new Int32Array(maxN);
    const runStarts = new Int32Array(I + 1);
    // true positives can only be non-ignored gts matched once each: at most npig per (k, a, t)
    const npigKA = new Int32Array(K * A);
    let tpStride = 1;
    for (let k = 0; k < K; k++)
      for (let i = 0; i < I; i++)
        if (s.nonEmpty[k * I + i])
          for (let a = 0; a < A; a++) tpStride = Math.max(tpStride, (npigKA[k * A + a] += s.npig[(k * I + i) * A + a]!));
    const cnt = new Counts(M * AT, tpStride);
    const maxDets = Int32Array.from(p.maxDets);
    const thrsAscending = p.recThrs.every((v, r) => r === 0 || v >= p.recThrs[r - 1]!);
    const sc = s.dtScore;
    for (let k = 0; k < K; k++) {
      let anyE = false;
      for (let i = 0; i < I && !anyE; i++) anyE = s.nonEmpty[k * I + i] === 1;
      if (!anyE) continue;
      // concatenation of the images' detections (each block best-first, cut to maxDets[-1])
      let n = 0;
      let runs = 0;
      for (let i = 0; i < I; i++) {
        const g = k * I + i;
        if (!s.nonEmpty[g]) continue;
        const st = s.dtStart[g]!;
        const len = s.dtStart[g + 1]! - st;
        if (len === 0) continue;
        runStarts[runs++] = n;
        for (let d = 0; d < len; d++) conc[n++] = st + d;
      }
      runStarts[runs] = n;
      // np.argsort(-scores, kind='mergesort') == a stable merge of the sorted per-image blocks;
      // the order for a smaller maxDet is the subsequence of detections ranked below it
      mergeSortedRuns(conc, sorted, tmp, runStarts, runs, sc);
      countFlags(s.flags, s.dtRank, sc, sorted, n, maxDets, AT, cnt);
      for (let m = 0; m < M; m++) {
        const nm = cnt.n[m]!;
        for (let a = 0; a < A; a++) {
          const npig = npigKA[k * A + a]!;
          if (npig === 0) continue;
          for (let t = 0; t < T; t++) {
            const q = m * AT + a * T + t;
            const ntp = cnt.tp[q]!;
            recall[((t * K + k) * A + a) * M + m] = nm ? ntp / npig : 0;
            const firstIsTp = nm > 0 && s.flags[sorted[0]! * AT + a * T + t] === FLAG_TP;
            const base = (((t * R) * K + k) * A + a) * M + m;
            fillPrecision(precision, scores, base, K * A * M, p.recThrs, thrsAscending, cnt, q, nm, npig, sc[sorted[0]!]!, firstIsTp);
          }
        }
      }
    }
    this.eval = {
      params: p,
      counts: [T, R, K, A, M],
      date: new Date().toISOString().replace('T', ' ').slice(0, 19),
      precision,
      recall,
      scores,
    };
    return (performance.now() - tic) / 1000;
  }

  /**
   * The 12 standard numbers (AP, AP50, AP75, AP S/M/L, AR1, AR10, AR100, AR S/M/L; for keypoints
   * the 10 of pycocotools: AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl), printed as
   * pycocotools prints them. Sets and returns `stats`.
   * @throws for bbox/segm when `params.maxDets` has fewer than three entries (pycocotools raises
   *   IndexError there), saying which entries the stats read.
   */
  summarize(opts: SummarizeOptions = {}): number[] {
    const e = this.eval;
    if (!e) throw new Error('COCOeval.summarize: run accumulate() first');
    const log = opts.log === undefined ? (l: string) => console.log(l) : opts.log;
    const md = this.params.maxDets;
    if (this.params.iouType !== 'keypoints' && md.length < 3) {
      // pycocotools raises IndexError (params.maxDets[2]) after printing the first line
      throw new Error(
        `COCOeval.summarize: the 12 detection stats read maxDets[0], maxDets[1] and maxDets[2], but Params.maxDets is ` +
          `[${md.join(', ')}] (${md.length} entr${md.length === 1 ? 'y' : 'ies'}; pycocotools raises IndexError here). ` +
          'Give at least three values (default [1, 10, 100]) or read eval.precision / eval.recall directly.',
      );
    }
    const specs: [number, number | null, string, number][] = this.params.iouType === 'keypoints' ? [
      [1, null, 'all', 20],
      [1, 0.5, 'all', 20],
      [1, 0.75, 'all', 20],
      [1, null, 'medium', 20],
      [1, null, 'large', 20],
      [0, null, 'all', 20],
      [0, 0.5, 'all', 20],
      [0, 0.75, 'all', 20],
      [0, null, 'medium', 20],
      [0, null, 'large', 20],
    ] : [
      [1, null, 'all', 100],
      [1, 0.5, 'all', md[2]!],
      [1, 0.75, 'all', md[2]!],
      [1, null, 'small', md[2]!],
      [1, null, 'medium', md[2]!],
      [1, null, 'large', md[2]!],
      [0, null, 'all', md[0]!],
      [0, null, 'all', md[1]!],
      [0, null, 'all', md[2]!],
      [0, null, 'small', md[2]!],
      [0, null, 'medium', md[2]!],
      [0, null, 'large', md[2]!],
    ];
    this.stats = specs.map(([ap, iouThr, areaRng, maxDets]) => {
      const v = summarizeOne(e, ap === 1, iouThr, areaRng, maxDets);
      if (log) log(formatLine(e.params, ap === 1, iouThr, areaRng, maxDets, v));
      return v;
    });
    return this.stats;
  }

  /** Per-category AP/AR (area 'all', last maxDets), from the accumulated precision/recall. */
  perCategory(): CategoryResult[] {
    const e = this.eval;
    if (!e || !this.state) throw new Error('COCOeval.perCategory: run accumulate() first');
    const [T, R, K, A, M] = e.counts;
    const p = e.params;
    const a = p.areaRngLbl.indexOf('all');
    const m = M - 1;
    const t50 = p.iouThrs.indexOf(0.5);
    const t75 = p.iouThrs.indexOf(0.75);
    return this.state.catIds.map((catId, k) => {
      const apAt = (ts: number[]) => {
        const vals: number[] = [];
        for (const t of ts) for (let r = 0; r < R; r++) vals.push(e.precision[(((t * R + r) * K + k) * A + a) * M + m]!);
        return meanValid(vals);
      };
      const recVals: number[] = [];
      for (let t = 0; t < T; t++) recVals.push(e.recall[((t * K + k) * A + a) * M + m]!);
      return {
        catId,
        name: this.cocoGt.cats.get(catId)?.name ?? String(catId),
        ap: apAt(range(T)),
        ap50: t50 >= 0 ? apAt([t50]) : -1,
        ap75: t75 >= 0 ? apAt([t75]) : -1,
        ar: meanValid(recVals),
      };
    });
  }

  private groupRows(table: AnnotationTable, p: Params): Groups {
    const imgIndex = new Map<number, number>();
    p.imgIds.forEach((id, i) => imgIndex.set(id, i));
    const catLists = new Map<number, number[]>();
    p.catIds.forEach((id, k) => {
      const l = catLists.get(id);
      if (l) l.push(k);
      else catLists.set(id, [k]);
    });
    const I = p.imgIds.length;
    const K = p.useCats ? p.catIds.length : 1;
    const key = new Int32Array(table.n).fill(-1);
    const count = new Int32Array(K * I + 1);
    for (let r = 0; r < table.n; r++) {
      const i = imgIndex.get(table.imageId[r]!);
      if (i === undefined) continue;
      const ks = catLists.get(table.categoryId[r]!);
      if (ks === undefined) continue;
      // class-agnostic: one group per image, categories in p.catIds order (pycocotools' concatenation)
      const k = p.useCats ? ks[0]! : 0;
      key[r] = k * I + i;
      count[key[r]! + 1]!++;
    }
    for (let g = 0; g < K * I; g++) count[g + 1]! += count[g]!;
    const start = count;
    const fill = start.slice(0, K * I);
    const rows = new Int32Array(start[K * I]!);
    if (p.useCats) {
      for (let r = 0; r < table.n; r++) if (key[r]! >= 0) rows[fill[key[r]!]!++] = r;
    } else {
      // rows ordered by category position, then file order
      const catOrder = new Map<number, number>();
      p.catIds.forEach((id, k) => catOrder.has(id) || catOrder.set(id, k));
      const idx = Array.from({ length: table.n }, (_, r) => r).filter((r) => key[r]! >= 0);
      idx.sort((x, y) => catOrder.get(table.categoryId[x]!)! - catOrder.get(table.categoryId[y]!)! || x - y);
      for (const r of idx) rows[fill[key[r]!]!++] = r;
    }
    return { start, rows };
  }

  private rowsOf(table: AnnotationTable, imgId: number, catIds: number[]): Int32Array {
    const out: number[] = [];
    for (const c of catIds) for (let r = 0; r < table.n; r++) if (table.imageId[r] === imgId && table.categoryId[r] === c) out.push(r);
    return Int32Array.from(out);
  }

  /**
   * IoU `[D, G]` of detections (sorted) against ground truth (file order), pycocotools computeIoU.
   * The result may live in `scratch` and is valid until the next call.
   */
  private computeIoU(gtRows: Int32Array, dRows: Int32Array, scratch: MatchScratch): Float64Array {
    const G = gtRows.length;
    const D = dRows.length;
    // pycocotools reads every gt's iscrowd before it looks at the detections
    if (scratch.crowd.length < G) scratch.crowd = new Uint8Array(G * 2);
    const crowd = scratch.crowd.subarray(0, G);
    for (let j = 0; j < G; j++) crowd[j] = requireCrowd(this.cocoGt, gtRows[j]!);
    if (G === 0 || D === 0) return new Float64Array(0);
    if (this.params.iouType === 'keypoints') {
      // pycocotools' computeOks looks up _gts[imgId, catId]; class-agnostic runs pass catId -1,
      // find nothing and therefore match nothing. Kept for identical numbers.
      if (!this.params.useCats) return new Float64Array(0);
      return computeOks(this.cocoGt, gtRows, this.cocoDt, dRows, this.params.kptOksSigmas);
    }
    if (this.params.iouType === 'bbox') {
      if (scratch.gtBoxes.length < G * 4) scratch.gtBoxes = new Float64Array(G * 8);
      if (scratch.dtBoxes.length < D * 4) scratch.dtBoxes = new Float64Array(D * 8);
      if (scratch.ious.length < G * D) scratch.ious = new Float64Array(G * D * 2);
      const gb = gatherBoxes(this.cocoGt, gtRows, scratch.gtBoxes.subarray(0, G * 4), true);
      // results always have a box (given, or from the mask / keypoints); it may hold NaN / Infinity
      const db = gatherBoxes(this.cocoDt, dRows, scratch.dtBoxes.subarray(0, D * 4), false);
      return bbIou(db, gb, crowd, scratch.ious.subarray(0, G * D));
    }
    const g: Rle[] = Array.from(gtRows, (r) => this.cocoGt.rowToRle(r));
    const d: Rle[] = Array.from(dRows, (r) => this.cocoDt.rowToRle(r));
    return rleIou(d, g, crowd);
  }
}

function requireCrowd(coco: COCO, r: number): number {
  const c = coco.table.iscrowd[r]!;
  if (Number.isNaN(c)) throw new Error(`${coco.source}: annotation ${coco.table.id[r]} has no 'iscrowd' field`);
  return c !== 0 ? 1 : 0;
}

function gatherBoxes(coco: COCO, rows: Int32Array, out: Float64Array, required: boolean): Float64Array {
  for (let j = 0; j < rows.length; j++) {
    const r = rows[j]!;
    for (let c = 0; c < 4; c++) out[j * 4 + c] = coco.table.bbox[r * 4 + c]!;
    if (required && Number.isNaN(out[j * 4]!)) throw new Error(`${coco.source}: annotation ${coco.table.id[r]} has no 'bbox' (needed for bbox evaluation)`);
  }
  return out;
}

function maxGroupSpan(s: EvalState, K: number, I: number): number {
  let best = 0;
  for (let k = 0; k < K; k++) best = Math.max(best, s.dtStart[(k + 1) * I]! - s.dtStart[k * I]!);
  return Math.max(best, 1);
}

function uniqueSorted(v: number[]): number[] {
  return [...new Set(v)].sort((a, b) => a - b);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function checkParams(p: Params): void {
  if (p.maxDets.length === 0) throw new Error('Params.maxDets must not be empty');
  if (p.areaRng.length !== p.areaRngLbl.length) {
    throw new Error(`Params.areaRng has ${p.areaRng.length} ranges but areaRngLbl has ${p.areaRngLbl.length} labels`);
  }
  for (const id of [...p.imgIds, ...p.catIds]) if (!Number.isFinite(id)) throw new Error(`Params ids must be numbers, got ${id}`);
}
