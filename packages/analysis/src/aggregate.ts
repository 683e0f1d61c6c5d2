/**
 * Mean ± std over several seeds' runs: the scalar metrics of each analysis are read out of each
 * run's results (one run = one checkpoint per model name, e.g. seed 0's baseline, control and
 * RefConv), then summarised per model and metric over the runs.
 */

/** Scalar metrics of one run: `metrics[model][metric] = value`. */
export type RunMetrics = Record<string, Record<string, number>>;

/** Summary of one metric of one model over the runs. */
export interface MetricSummary {
  /** The value in each run, in run order (NaN where the run did not measure it). */
  values: number[];
  /** Runs with a finite value. */
  n: number;
  /** Mean over the finite values (NaN when none). */
  mean: number;
  /** Sample standard deviation (n - 1 in the denominator) over the finite values; NaN when n < 2. */
  std: number;
}

/** All metrics of all models over the runs, in first-seen order. */
export interface Aggregate {
  runs: number;
  models: string[];
  metrics: string[];
  /** `summary[model][metric]`. */
  summary: Record<string, Record<string, MetricSummary>>;
}

/** Mean and sample standard deviation (n - 1) of the finite values of `v`. */
export function meanStd(v: number[]): { n: number; mean: number; std: number } {
  const f = v.filter(Number.isFinite);
  const n = f.length;
  if (n === 0) return { n, mean: NaN, std: NaN };
  const mean = f.reduce((a, b) => a + b, 0) / n;
  const std = n < 2 ? NaN : Math.sqrt(f.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  return { n, mean, std };
}

/**
 * Summarises runs metric by metric: for every model and metric seen in any run, the values over
 * the runs, their mean and sample std.
 */
export function aggregateRuns(runs: RunMetrics[]): Aggregate {
  const models: string[] = [];
  const metrics: string[] = [];
  for (const r of runs) {
    for (const [m, ms] of Object.entries(r)) {
      if (!models.includes(m)) models.push(m);
      for (const k of Object.keys(ms)) if (!metrics.includes(k)) metrics.push(k);
    }
  }
  const summary: Aggregate['summary'] = {};
  for (const m of models) {
    summary[m] = {};
    for (const k of metrics) {
      const values = runs.map((r) => r[m]?.[k] ?? NaN);
      if (values.every((v) => !Number.isFinite(v))) continue;
      summary[m]![k] = { values, ...meanStd(values) };
    }
  }
  return { runs: runs.length, models, metrics, summary };
}

/**
 * Paired per-run differences to a reference model (e.g. RefConv - control, seed by seed), as runs
 * for {@link aggregateRuns}: `out[m][k] = runs[i][m][k] - runs[i][reference][k]` for every model
 * m other than the reference (NaN where either value is missing).
 *
 * @throws Error when no run has the reference model.
 */
export function pairedDifferences(runs: RunMetrics[], reference: string): RunMetrics[] {
  if (!runs.some((r) => r[reference])) throw new Error(`no run has the reference model '${reference}' (models: ${[...new Set(runs.flatMap((r) => Object.keys(r)))].join(', ')})`);
  return runs.map((r) => {
    const ref = r[reference] ?? {};
    const out: RunMetrics = {};
    for (const [m, ms] of Object.entries(r)) {
      if (m === reference) continue;
      out[`${m} - ${reference}`] = Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, v - (ref[k] ?? NaN)]));
    }
    return out;
  });
}

/** `mean ± std` with `digits` decimals (`mean` alone for one run, `n/a` for none). */
export function formatMeanStd(s: MetricSummary | undefined, digits = 3): string {
  if (!s || s.n === 0) return 'n/a';
  if (s.n < 2) return s.mean.toFixed(digits);
  return `${s.mean.toFixed(digits)} ± ${s.std.toFixed(digits)}`;
}

interface SkeletonLike { name: string; kernel: Array<{ k: number; skeletonRatio: number; grid: number[] }>; delta: Array<{ k: number; skeletonRatio: number }> }
interface RedundancyLike { name: string; mean: { kl: number; cos: number; weightCos: number } }
interface WeightsLike { name: string; mean: number }
interface RobustnessLike { name: string; clean: number; fgsm: Array<{ eps: number; top1: number }>; pgd: Array<{ eps: number; top1: number }>; pgdSteps: number }
interface SurfaceLike { name: string; center: number; sharpness: number }
interface InterpolationLike { from: string; to: string; points: Array<{ alpha: number; loss: number }> }

/** The parts of one run's `results.json` that {@link runMetrics} reads (every part optional). */
export interface RunResultsLike {
  skeleton?: SkeletonLike[];
  weights?: { models: WeightsLike[] };
  redundancy?: { models: RedundancyLike[] };
  robustness?: { models: RobustnessLike[] };
  landscape?: { surfaces: SurfaceLike[]; interpolations: InterpolationLike[] };
}

/**
 * The scalar metrics of one run's results, by model: `skeleton ratio kK` (and `centre kK`,
 * `corner kK`, `delta ratio kK` for RefConv models), `weight |cos| (checkpoint)`, `feature KL`,
 * `feature |cos|`, `weight |cos|`, `clean top-1`, `FGSM top-1 @eps`, `PGD-T top-1 @eps`,
 * `loss at the model`, `sharpness`, and for each interpolation target `barrier (max loss - max of
 * the ends)`.
 */
export function runMetrics(r: RunResultsLike): RunMetrics {
  const out: RunMetrics = {};
  const put = (m: string, k: string, v: number) => { (out[m] ??= {})[k] = v; };
  for (const s of r.skeleton ?? []) {
    for (const g of s.kernel) {
      const K = g.k;
      put(s.name, `skeleton ratio k${K}`, g.skeletonRatio);
      put(s.name, `centre k${K}`, g.grid[(K * K - 1) / 2]!);
      put(s.name, `corner k${K}`, (g.grid[0]! + g.grid[K - 1]! + g.grid[K * (K - 1)]! + g.grid[K * K - 1]!) / 4);
    }
    for (const g of s.delta) put(s.name, `delta ratio k${g.k}`, g.skeletonRatio);
  }
  for (const w of r.weights?.models ?? []) put(w.name, 'weight |cos| (checkpoint)', w.mean);
  for (const m of r.redundancy?.models ?? []) {
    put(m.name, 'feature KL', m.mean.kl);
    put(m.name, 'feature |cos|', m.mean.cos);
    put(m.name, 'weight |cos|', m.mean.weightCos);
  }
  for (const m of r.robustness?.models ?? []) {
    put(m.name, 'clean top-1', m.clean);
    for (const p of m.fgsm) put(m.name, `FGSM top-1 @${p.eps}`, p.top1);
    for (const p of m.pgd) put(m.name, `PGD-${m.pgdSteps} top-1 @${p.eps}`, p.top1);
  }
  for (const s of r.landscape?.surfaces ?? []) {
    put(s.name, 'loss at the model', s.center);
    put(s.name, 'sharpness', s.sharpness);
  }
  for (const i of r.landscape?.interpolations ?? []) {
    const ends = Math.max(i.points[0]!.loss, i.points[i.points.length - 1]!.loss);
    put(i.to, `barrier from ${i.from}`, Math.max(...i.points.map((p) => p.loss)) - ends);
  }
  return out;
}

/** The aggregate as a markdown table: one row per metric, one column per model. */
export function aggregateMarkdown(a: Aggregate, runLabels: string[], heading?: string): string {
  const digits = (k: string) => (/top-1/.test(k) ? 2 : 4);
  return [heading ?? `## Mean ± std over ${a.runs} runs (${runLabels.join(', ')})`, '',
    heading ? 'Each run\'s difference first, then mean ± sample std of the differences (a paired comparison: seed-to-seed variation of the starting point cancels).' : 'Sample standard deviation (n - 1); a model given one checkpoint for every run has std 0. Per-run reports: the runs listed above.', '',
    `| metric | ${a.models.join(' | ')} |`, `|---|${a.models.map(() => '---|').join('')}`,
    // a metric name's '|' (weight |cos|) would end the table cell
    // rows with no value for any model (e.g. the delta ratio in differences to a plain control) left out
    ...a.metrics.filter((k) => a.models.some((m) => a.summary[m]![k])).map((k) => `| ${k.replace(/\|/g, '\\|')} | ${a.models.map((m) => formatMeanStd(a.summary[m]![k], digits(k))).join(' | ')} |`), ''].join('\n');
}
