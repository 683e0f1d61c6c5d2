/** The summarize part of COCOeval: numpy-exact means and Python-exact number formatting. */
import type { EvalResult } from '../cocoeval.js';
import type { Params } from '../params.js';

/**
 * One summary number, pycocotools' `_summarize`: the mean of precision (ap) or recall over the
 * selected IoU threshold(s), area range and maxDets, skipping -1 entries; -1 when nothing is left.
 */
export function summarizeOne(e: EvalResult, ap: boolean, iouThr: number | null, areaRng: string, maxDets: number): number {
  const p = e.params;
  const [T, R, K, A, M] = e.counts;
  const aind = p.areaRngLbl.flatMap((l, i) => (l === areaRng ? [i] : []));
  const mind = p.maxDets.flatMap((m, i) => (m === maxDets ? [i] : []));
  const tind = iouThr === null ? Array.from({ length: T }, (_, i) => i) : p.iouThrs.flatMap((v, i) => (v === iouThr ? [i] : []));
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

/** One line of pycocotools' printed table. */
export function formatLine(p: Params, ap: boolean, iouThr: number | null, areaRng: string, maxDets: number, v: number): string {
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

