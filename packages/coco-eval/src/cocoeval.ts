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

const EPS = 2.220446049250313e-16; // np.spacing(1)
const FLAG_TP = 1;
const FLAG_FP = 2;

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
    const dtRows = sortAndCutDetections(dtGroups, this.cocoDt.table.score, maxDet, this.cocoDt.source, this.cocoDt.table.id);

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
   */
  summarize(opts: SummarizeOptions = {}): number[] {
    const e = this.eval;
    if (!e) throw new Error('COCOeval.summarize: run accumulate() first');
    const log = opts.log === undefined ? (l: string) => console.log(l) : opts.log;
    const md = this.params.maxDets;
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
      const gb = gatherBoxes(this.cocoGt, gtRows, scratch.gtBoxes.subarray(0, G * 4));
      const db = gatherBoxes(this.cocoDt, dRows, scratch.dtBoxes.subarray(0, D * 4));
      return bbIou(db, gb, crowd, scratch.ious.subarray(0, G * D));
    }
    const g: Rle[] = Array.from(gtRows, (r) => this.cocoGt.rowToRle(r));
    const d: Rle[] = Array.from(dRows, (r) => this.cocoDt.rowToRle(r));
    return rleIou(d, g, crowd);
  }
}

/**
 * Object keypoint similarity `[D, G]`, pycocotools computeOks: per visible gt keypoint
 * exp(-d² / (2 s² (2σ)²)) averaged; a gt without visible keypoints measures the distance to its
 * box enlarged by its size on each side, over all keypoints.
 */
function computeOks(gtC: COCO, gtRows: Int32Array, dtC: COCO, dRows: Int32Array, sigmas: number[]): Float64Array {
  const G = gtRows.length;
  const D = dRows.length;
  const k = sigmas.length;
  const vars = sigmas.map((s) => (s * 2) * (s * 2)); // np.square: a product, not pow
  const out = new Float64Array(D * G);
  const e = new Float64Array(k);
  for (let j = 0; j < G; j++) {
    const r = gtRows[j]!;
    const g = gtC.table.keypoints[r];
    if (!g) throw new Error(`${gtC.source}: annotation ${gtC.table.id[r]} has no 'keypoints' (needed for keypoint evaluation)`);
    if (g.length !== 3 * k) throw new Error(`${gtC.source}: annotation ${gtC.table.id[r]} has ${g.length / 3} keypoints, the sigmas ${k}`);
    let k1 = 0;
    for (let q = 0; q < k; q++) if (g[3 * q + 2]! > 0) k1++;
    const bb = gtC.table.bbox.subarray(r * 4, r * 4 + 4);
    const x0 = bb[0]! - bb[2]!;
    const x1 = bb[0]! + bb[2]! * 2;
    const y0 = bb[1]! - bb[3]!;
    const y1 = bb[1]! + bb[3]! * 2;
    const area = gtC.table.area[r]! + EPS;
    for (let i = 0; i < D; i++) {
      const d = dtC.table.keypoints[dRows[i]!];
      if (!d || d.length !== 3 * k) throw new Error(`${dtC.source}: detection ${dtC.table.id[dRows[i]!]} needs ${k} keypoints`);
      let n = 0;
      for (let q = 0; q < k; q++) {
        const xd = d[3 * q]!;
        const yd = d[3 * q + 1]!;
        let dx: number;
        let dy: number;
        if (k1 > 0) {
          if (!(g[3 * q + 2]! > 0)) continue;
          dx = xd - g[3 * q]!;
          dy = yd - g[3 * q + 1]!;
        } else {
          dx = Math.max(0, x0 - xd) + Math.max(0, xd - x1);
          dy = Math.max(0, y0 - yd) + Math.max(0, yd - y1);
        }
        e[n++] = Math.exp(-((dx * dx + dy * dy) / vars[q]! / area / 2));
      }
      out[i * G + j] = pairwiseSum(e, 0, n) / n;
    }
  }
  return out;
}

function requireCrowd(coco: COCO, r: number): number {
  const c = coco.table.iscrowd[r]!;
  if (Number.isNaN(c)) throw new Error(`${coco.source}: annotation ${coco.table.id[r]} has no 'iscrowd' field`);
  return c !== 0 ? 1 : 0;
}

function gatherBoxes(coco: COCO, rows: Int32Array, out: Float64Array): Float64Array {
  for (let j = 0; j < rows.length; j++) {
    const r = rows[j]!;
    for (let c = 0; c < 4; c++) out[j * 4 + c] = coco.table.bbox[r * 4 + c]!;
    if (Number.isNaN(out[j * 4]!)) throw new Error(`${coco.source}: annotation ${coco.table.id[r]} has no 'bbox' (needed for bbox evaluation)`);
  }
  return out;
}

/** Scratch buffers and outputs of {@link matchGroup}, reused across groups. */
class MatchScratch {
  gtBoxes = new Float64Array(64);
  bestIou = new Float64Array(64);
  dtBoxes = new Float64Array(64);
  crowd = new Uint8Array(16);
  ious = new Float64Array(256);
  dtMatch = new Int32Array(0);
  gtm = new Float64Array(0);
  gtOrder = new Int32Array(0);
  gtIg = new Uint8Array(0);
  gtCrowd = new Uint8Array(0);
  gtIdS = new Float64Array(0);
  npig = 0;
  ensure(T: number, D: number, G: number): void {
    if (this.dtMatch.length < T * D) this.dtMatch = new Int32Array(T * D * 2);
    if (this.gtm.length < T * G) this.gtm = new Float64Array(T * G * 2);
    if (this.gtOrder.length < G) {
      this.gtOrder = new Int32Array(G * 2);
      this.gtIg = new Uint8Array(G * 2);
      this.gtCrowd = new Uint8Array(G * 2);
      this.gtIdS = new Float64Array(G * 2);
    }
  }
}

/**
 * pycocotools evaluateImg for one group and area range: gt sorted ignored-last (stable), each
 * detection (best first) matched greedily at each threshold to the best-IoU available gt, crowd
 * gts reusable, a match to a regular gt never displaced by an ignored one. Writes per (t, d) flags.
 *
 * @param ious `[D, G]` with gt in file order (the caller's `gtRows` order)
 */
function matchGroup(
  gtT: AnnotationTable,
  dtT: AnnotationTable,
  gtRows: Int32Array,
  dRows: Int32Array,
  ious: Float64Array,
  aRng: [number, number],
  iouThrs: number[],
  s: MatchScratch,
  out: Uint8Array,
  outBase: number,
  outStride: number,
  keepMatches = false,
  keypoints = false,
): number {
  const G = gtRows.length;
  const D = dRows.length;
  const T = iouThrs.length;
  s.ensure(T, D, G);
  const gtOrder = s.gtOrder;
  const gtIg = s.gtIg;
  const gtCrowd = s.gtCrowd;
  const gtIdS = s.gtIdS;
  // ignore flags and the stable ignored-last order (np.argsort(_ignore, kind='mergesort'))
  let pos = 0;
  let npig = 0;
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < G; j++) {
      const r = gtRows[j]!;
      const area = gtT.area[r]!;
      if (Number.isNaN(area)) throw new Error(`ground-truth annotation ${gtT.id[r]} has no 'area' field`);
      const crowd = gtT.iscrowd[r]!;
      let ig = (crowd !== 0 && !Number.isNaN(crowd)) || area < aRng[0] || area > aRng[1] ? 1 : 0;
      if (keypoints) {
        const nk = gtT.numKeypoints[r]!;
        if (Number.isNaN(nk)) throw new Error(`ground-truth annotation ${gtT.id[r]} has no 'num_keypoints' field`);
        if (nk === 0) ig = 1;
      }
      if (ig !== pass) continue;
      gtOrder[pos] = j;
      gtIg[pos] = ig;
      gtCrowd[pos] = crowd !== 0 ? 1 : 0;
      gtIdS[pos] = gtT.id[r]!;
      pos++;
      if (ig === 0) npig++;
    }
  }
  const gtm = s.gtm;
  gtm.fill(0, 0, T * G);
  const haveIous = G > 0 && D > 0 && ious.length > 0;
  // best IoU of each detection over all gts: below a threshold, the scan cannot match anything
  if (s.bestIou.length < D) s.bestIou = new Float64Array(D * 2);
  const bestIou = s.bestIou;
  for (let d = 0; d < D; d++) {
    let b = -Infinity;
    if (haveIous) for (let j = 0; j < G; j++) b = Math.max(b, ious[d * G + j]!);
    bestIou[d] = b;
  }
  for (let t = 0; t < T; t++) {
    const thr = Math.min(iouThrs[t]!, 1 - 1e-10);
    const gtmRow = t * G;
    for (let d = 0; d < D; d++) {
      let iou = thr;
      let m = -1;
      if (haveIous && bestIou[d]! >= iou) {
        const row = d * G;
        for (let j = 0; j < G; j++) {
          // gtm holds the matching detection's id: pycocotools tests `> 0`
          if (gtm[gtmRow + j]! > 0 && !gtCrowd[j]) continue;
          if (m > -1 && gtIg[m] === 0 && gtIg[j] === 1) break;
          const v = ious[row + gtOrder[j]!]!;
          if (v < iou) continue;
          iou = v;
          m = j;
        }
      }
      let matched = false;
      let ignored = false;
      if (m !== -1) {
        ignored = gtIg[m] === 1;
        matched = gtIdS[m] !== 0; // pycocotools stores the gt id: an id of 0 reads as "no match"
        gtm[gtmRow + m] = dtT.id[dRows[d]!]!;
      }
      if (!matched && !ignored) {
        const a = dtT.area[dRows[d]!]!;
        if (a < aRng[0] || a > aRng[1]) ignored = true;
      }
      out[outBase + d * outStride + t] = ignored ? 0 : matched ? FLAG_TP : FLAG_FP;
      if (keepMatches) s.dtMatch[t * D + d] = m;
    }
  }
  s.npig = npig;
  return npig;
}

/** Detections of each group sorted by score (stable) and cut to maxDet, as row indices. */
function sortAndCutDetections(groups: Groups, score: Float64Array, maxDet: number, source: string, ids: Float64Array) {
  const nG = groups.start.length - 1;
  const start = new Int32Array(nG);
  const count = new Int32Array(nG);
  const rows = new Int32Array(groups.rows.length);
  for (let g = 0; g < nG; g++) {
    const s = groups.start[g]!;
    const e = groups.start[g + 1]!;
    start[g] = s;
    if (e === s) continue;
    const seg = groups.rows.subarray(s, e);
    for (let j = 0; j < seg.length; j++) {
      if (!Number.isFinite(score[seg[j]!]!)) throw new Error(`${source}: detection ${ids[seg[j]!]} has no finite 'score'`);
    }
    rows.set(stableScoreOrder(seg, score), s);
    count[g] = Math.min(e - s, maxDet);
  }
  return { start, count, rows };
}

/** Rows reordered best score first, ties in their given order (np.argsort(-score, kind='mergesort')). */
function stableScoreOrder(rows: Int32Array, score: Float64Array): Int32Array {
  let ordered = true;
  for (let j = 1; j < rows.length && ordered; j++) ordered = score[rows[j]!]! <= score[rows[j - 1]!]!;
  if (ordered) return rows.slice();
  const pos = new Int32Array(rows.length);
  for (let j = 0; j < pos.length; j++) pos[j] = j;
  pos.sort((x, y) => score[rows[y]!]! - score[rows[x]!]! || x - y);
  return pos.map((j) => rows[j]!);
}

function maxGroupSpan(s: EvalState, K: number, I: number): number {
  let best = 0;
  for (let k = 0; k < K; k++) best = Math.max(best, s.dtStart[(k + 1) * I]! - s.dtStart[k * I]!);
  return Math.max(best, 1);
}

/**
 * Stable merge of runs that are each sorted best score first: the order numpy's stable argsort of
 * -score gives for their concatenation (equal scores keep concatenation order).
 */
function mergeSortedRuns(
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
        if (score[a[j]!]! > score[a[i]!]!) b[o++] = a[j++]!;
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
class Counts {
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
function countFlags(
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
function fillPrecision(
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

function summarizeOne(e: EvalResult, ap: boolean, iouThr: number | null, areaRng: string, maxDets: number): number {
  const p = e.params;
  const [T, R, K, A, M] = e.counts;
  const aind = p.areaRngLbl.flatMap((l, i) => (l === areaRng ? [i] : []));
  const mind = p.maxDets.flatMap((m, i) => (m === maxDets ? [i] : []));
  const tind = iouThr === null ? range(T) : p.iouThrs.flatMap((v, i) => (v === iouThr ? [i] : []));
  // numpy's s[..., aind, mind] pairs aind with mind elementwise (broadcasting a length-1 list)
  const pairs =
    aind.length === mind.length
      ? aind.map((a, j) => [a, mind[j]!] as const)
      : aind.length === 1
        ? mind.map((m) => [aind[0]!, m] as const)
        : mind.length === 1
          ? aind.map((a) => [a, mind[0]!] as const)
          : [];
  const rows = ap ? R : 1;
  const vals = new Float64Array(tind.length * rows * K * pairs.length);
  let n = 0;
  for (const t of tind)
    for (let r = 0; r < rows; r++)
      for (let k = 0; k < K; k++)
        for (const [a, m] of pairs) {
          const v = ap ? e.precision[(((t * R + r) * K + k) * A + a) * M + m]! : e.recall[((t * K + k) * A + a) * M + m]!;
          if (v > -1) vals[n++] = v;
        }
  return n === 0 ? -1 : pairwiseSum(vals, 0, n) / n;
}

/** np.mean(v[v > -1]) with numpy's pairwise summation, or -1 when nothing is valid. */
export function meanValid(vals: number[]): number {
  const v = Float64Array.from(vals.filter((x) => x > -1));
  if (v.length === 0) return -1;
  return pairwiseSum(v, 0, v.length) / v.length;
}

/** numpy's pairwise_sum for float64 (blocks of 8, split above 128 elements). */
export function pairwiseSum(a: Float64Array, off: number, n: number): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[off + i]!;
    return res;
  }
  if (n <= 128) {
    const r = new Float64Array(8);
    for (let j = 0; j < 8; j++) r[j] = a[off + j]!;
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += a[off + i + j]!;
    let res = r[0]! + r[1]! + (r[2]! + r[3]!) + (r[4]! + r[5]! + (r[6]! + r[7]!));
    for (; i < n; i++) res += a[off + i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, off, n2) + pairwiseSum(a, off + n2, n - n2);
}

function formatLine(p: Params, ap: boolean, iouThr: number | null, areaRng: string, maxDets: number, v: number): string {
  const title = (ap ? 'Average Precision' : 'Average Recall').padEnd(18);
  const type = ap ? '(AP)' : '(AR)';
  const iouStr = iouThr === null ? `${pyFixed(p.iouThrs[0]!, 2)}:${pyFixed(p.iouThrs[p.iouThrs.length - 1]!, 2)}` : pyFixed(iouThr, 2);
  return ` ${title} ${type} @[ IoU=${iouStr.padEnd(9)} | area=${areaRng.padStart(6)} | maxDets=${String(maxDets).padStart(3)} ] = ${pyFixed(v, 3)}`;
}

/**
 * Python's `'{:0.Nf}'.format(v)`: correctly rounded, exact ties to even (JS toFixed breaks exact
 * ties upward, e.g. 0.0625 -> '0.063' where Python prints '0.062').
 */
export function pyFixed(v: number, digits: number): string {
  const s = v.toFixed(digits);
  const exact = Math.abs(v).toFixed(Math.min(100, digits + 60));
  const dot = exact.indexOf('.');
  const tail = exact.slice(dot + 1 + digits);
  if (!/^50*$/.test(tail)) return s;
  // exact tie: toFixed rounded away from zero; step back if that made the last digit odd
  const lastDigit = Number(s[s.length - 1]);
  if (lastDigit % 2 === 0) return s;
  const down = (Math.abs(v) * 10 ** digits - 0.5) / 10 ** digits;
  return (v < 0 ? '-' : '') + down.toFixed(digits);
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
