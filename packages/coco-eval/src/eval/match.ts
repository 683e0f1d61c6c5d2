/**
 * The per-image part of COCOeval: pycocotools' evaluateImg matching rule and computeOks, on flat
 * typed arrays with reusable scratch buffers.
 */
import type { AnnotationTable, COCO } from '../coco.js';
import { pairwiseSum } from './summary.js';

/** np.spacing(1) */
export const EPS = 2.220446049250313e-16;
/** Detection flag: true positive at this (area, threshold). */
export const FLAG_TP = 1;
/** Detection flag: false positive. 0 means ignored. */
export const FLAG_FP = 2;

/**
 * Object keypoint similarity `[D, G]`, pycocotools computeOks: per visible gt keypoint
 * exp(-d² / (2 s² (2σ)²)) averaged; a gt without visible keypoints measures the distance to its
 * box enlarged by its size on each side, over all keypoints.
 */
export function computeOks(gtC: COCO, gtRows: Int32Array, dtC: COCO, dRows: Int32Array, sigmas: number[]): Float64Array {
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

/** Scratch buffers and outputs of {@link matchGroup}, reused across groups. */
export class MatchScratch {
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
export function matchGroup(
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
    // a NaN IoU (from a NaN box) matches in pycocotools (`ious < iou` is false): never prune then
    if (haveIous) for (let j = 0; j < G; j++) b = Math.max(b, ious[d * G + j]!);
    if (b !== b) b = Infinity;
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
export function sortAndCutDetections(groups: { start: Int32Array; rows: Int32Array }, score: Float64Array, maxDet: number) {
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
    rows.set(stableScoreOrder(seg, score), s);
    count[g] = Math.min(e - s, maxDet);
  }
  return { start, count, rows };
}

/**
 * Order of two scores in numpy's `argsort(-score)`: negative when `a` comes first. Higher scores
 * first, `Infinity` before every finite score, `-Infinity` after them, `NaN` last (numpy sorts NaN
 * keys to the end); 0 for ties (equal scores, two infinities of one sign, two NaNs).
 */
export function compareScores(a: number, b: number): number {
  if (a === b) return 0;
  const an = a !== a;
  const bn = b !== b;
  if (an || bn) return an === bn ? 0 : an ? 1 : -1;
  return a > b ? -1 : 1;
}

/** Rows reordered best score first, ties in their given order (np.argsort(-score, kind='mergesort')); see {@link compareScores}. */
export function stableScoreOrder(rows: Int32Array, score: Float64Array): Int32Array {
  let ordered = true;
  for (let j = 1; j < rows.length && ordered; j++) ordered = compareScores(score[rows[j]!]!, score[rows[j - 1]!]!) >= 0;
  if (ordered) return rows.slice();
  const pos = new Int32Array(rows.length);
  for (let j = 0; j < pos.length; j++) pos[j] = j;
  pos.sort((x, y) => compareScores(score[rows[x]!]!, score[rows[y]!]!) || x - y);
  return pos.map((j) => rows[j]!);
}

