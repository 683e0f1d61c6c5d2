/**
 * Kernel skeletons (the ACNet / DBB analysis): how the weight magnitude of a network's K x K
 * kernels is spread over the K x K positions.
 *
 * For a layer with kernel w `[K, K, A, B]`: `m[y][x] = mean over (a, b) of |w[y][x][a][b]|`, then
 * normalised by the layer's largest position, `s[y][x] = m[y][x] / max m` (so the strongest
 * position is 1). The model's skeleton is the mean of `s` over its layers of that K. A "stronger
 * skeleton" is a larger centre cross (row and column through the centre) relative to the corners.
 */
import type { ConvKernel } from './kernels.js';

/** One layer's skeleton. */
export interface LayerSkeleton {
  layer: string;
  k: number;
  /** Mean |w| per position, row-major `[K * K]` (before normalisation). */
  meanAbs: number[];
  /** `meanAbs / max(meanAbs)`, row-major `[K * K]` (all 0 for an all-zero kernel). */
  normalized: number[];
}

/** A model's skeleton for one kernel size. */
export interface Skeleton {
  k: number;
  /** Number of layers averaged. */
  layers: number;
  /** Mean of the layers' `normalized` grids, row-major `[K * K]`. */
  grid: number[];
  /** Centre-cross mean / corner mean of `grid` (K >= 3): > 1 means the skeleton dominates. */
  skeletonRatio: number;
  perLayer: LayerSkeleton[];
}

/** What to measure: the kernel the layer uses, or (RefConv layers only) W_t - W_b. */
export type SkeletonField = 'kernel' | 'delta';

/** Mean |w| per position of a `[K, K, A, B]` row-major kernel, and its normalised form. */
export function layerSkeleton(layer: string, shape: [number, number, number, number], w: ArrayLike<number>, minus?: ArrayLike<number>): LayerSkeleton {
  const [k, k2, a, b] = shape;
  if (k !== k2) throw new Error(`kernel skeleton: layer '${layer}' has a non-square ${k}x${k2} kernel`);
  const per = a * b;
  const meanAbs: number[] = [];
  for (let p = 0; p < k * k; p++) {
    let s = 0;
    for (let i = p * per; i < (p + 1) * per; i++) s += Math.abs(w[i]! - (minus ? minus[i]! : 0));
    meanAbs.push(s / per);
  }
  const max = Math.max(...meanAbs);
  return { layer, k, meanAbs, normalized: meanAbs.map((v) => (max > 0 ? v / max : 0)) };
}

/** Centre-cross mean over corner mean of a `[K * K]` grid (NaN for K < 3 or zero corners). */
export function skeletonRatio(grid: number[], k: number): number {
  if (k < 3) return NaN;
  const c = (k - 1) / 2;
  let cross = 0, nc = 0, corner = 0;
  for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) {
    if (y === c || x === c) { cross += grid[y * k + x]!; nc++; }
  }
  for (const [y, x] of [[0, 0], [0, k - 1], [k - 1, 0], [k - 1, k - 1]] as const) corner += grid[y * k + x]!;
  return corner > 0 ? (cross / nc) / (corner / 4) : NaN;
}

/**
 * The skeletons of a model's kernels, one per kernel size >= `minK` (1x1 convs have no spatial
 * structure), in increasing K.
 *
 * @param field `kernel` (the kernel the layer uses: W_t for RefConv layers) or `delta`
 *   (W_t - W_b, RefConv layers only; other layers are skipped).
 */
export function kernelSkeletons(kernels: ConvKernel[], opts: { minK?: number; field?: SkeletonField } = {}): Skeleton[] {
  const minK = opts.minK ?? 3;
  const field = opts.field ?? 'kernel';
  const byK = new Map<number, LayerSkeleton[]>();
  for (const kn of kernels) {
    const k = kn.shape[0];
    if (k < minK) continue;
    if (field === 'delta' && !kn.basis) continue;
    const ls = layerSkeleton(kn.layer, kn.shape, kn.kernel, field === 'delta' ? kn.basis : undefined);
    byK.set(k, [...(byK.get(k) ?? []), ls]);
  }
  return [...byK.entries()].sort(([a], [b]) => a - b).map(([k, perLayer]) => {
    const grid = Array.from({ length: k * k }, (_, p) => perLayer.reduce((s, l) => s + l.normalized[p]!, 0) / perLayer.length);
    return { k, layers: perLayer.length, grid, skeletonRatio: skeletonRatio(grid, k), perLayer };
  });
}
