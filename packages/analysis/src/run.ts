/**
 * The analysis run behind `nx run analysis:run`: every requested analysis for a list of named
 * checkpoints, written as `report.md`, `results.json` and PNG figures into one folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '@refconv/engine';
import { readConvKernels } from './kernels.js';
import { kernelSkeletons, type Skeleton } from './skeleton.js';
import { heatmapPng } from './heatmap.js';
import * as tf from '@tensorflow/tfjs';
import { lineChartPng } from '@refconv/engine';
import { loadClassifier, type ModelSpec } from '@refconv/classify';
import { loadImageBatch, type ImageBatch } from './data.js';
import { modelRedundancy, type ModelRedundancy } from './model-redundancy.js';
import { robustness, type Robustness, type RobustnessOptions } from './adversarial.js';
import { interpolate, landscapeModel, surface2d, type InterpolationPoint, type Surface2D } from './landscape.js';
import { checkpointWeightRedundancy, type CheckpointWeightRedundancy } from './weight-redundancy.js';

/** A checkpoint and the name it has in the report (`baseline`, `control`, `refconv`, ...). */
export interface NamedModel {
  name: string;
  file: string;
}

/** Kernel-skeleton results of one model. */
export interface ModelSkeletons {
  name: string;
  file: string;
  /** Conv layers with K >= 3 found, and how many of them are RefConv2D layers. */
  layers: number;
  refconvLayers: number;
  /** Skeleton of the kernels the layers use (W_t for RefConv layers), one per kernel size. */
  kernel: Skeleton[];
  /** RefConv models only: skeleton of W_t - W_b. */
  delta: Skeleton[];
}

/** Options of {@link runSkeletons}. */
export interface SkeletonRunOptions {
  out: string;
  /** Also write one heatmap per layer and model (`skeleton-layers/<model>.png`). */
  perLayer?: boolean;
}

/** Parses `name=path` model arguments (a bare path is named after its file). */
export function parseModelArgs(args: string[]): NamedModel[] {
  const seen = new Set<string>();
  return args.map((a) => {
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : path.basename(a).replace(/\.safetensors$/, '');
    const file = eq > 0 ? a.slice(eq + 1) : a;
    if (!file) throw new Error(`--models: '${a}' has no path after '='`);
    if (seen.has(name)) throw new Error(`--models: the name '${name}' is used twice (give each model a distinct name=path)`);
    seen.add(name);
    return { name, file };
  });
}

/**
 * Parses `name=path[,path...]` model arguments into runs: run i holds every model's i-th path
 * (e.g. `control=s0.safetensors,s1.safetensors` for two seeds). A model with one path is used in
 * every run (e.g. a baseline shared by the seeds); every other model needs the same number of paths.
 *
 * @throws Error naming the models whose path counts differ.
 */
export function parseModelSets(args: string[]): NamedModel[][] {
  const named = parseModelArgs(args).map((m) => ({ name: m.name, files: m.file.split(',') }));
  for (const m of named) if (m.files.some((f) => !f)) throw new Error(`--models: '${m.name}' has an empty path in its comma-separated list`);
  const counts = [...new Set(named.map((m) => m.files.length).filter((n) => n > 1))];
  if (counts.length > 1) {
    throw new Error(`--models: the models list different numbers of checkpoints (${named.map((m) => `${m.name}: ${m.files.length}`).join(', ')}); give each model one path or the same number as the others (one per seed)`);
  }
  const runs = counts[0] ?? 1;
  return Array.from({ length: runs }, (_, i) => named.map((m) => ({ name: m.name, file: m.files.length === 1 ? m.files[0]! : m.files[i]! })));
}

/**
 * The models of one or more `classify:experiment` (or `classify:train`) output folders, as
 * `name=seed0,seed1,...` arguments for {@link parseModelSets}: for every `seed-<s>` folder (in seed
 * order) `baseline` (the run's `--from` checkpoint, recorded in `<dir>/results.json`'s
 * `config.baseline`, else `seed-<s>/pretrain/final.safetensors`), `control`
 * (`seed-<s>/control/final.safetensors`) and the RefConv model (`seed-<s>/refocus/final.safetensors`),
 * named `refconv`, or `refconv-<init>` when the run's `config.refocus.init` is not the default.
 * A model is listed when every seed has its checkpoint; a name found in two folders with the same
 * checkpoints is listed once (e.g. a baseline shared by two experiments).
 *
 * @throws Error naming the folder when it has no `seed-<s>` folder, its seeds differ from the first
 *   folder's, or a name is found in two folders with different checkpoints.
 */
export function experimentModelArgs(dirs: string[]): string[] {
  if (dirs.length === 0) return [];
  const found = new Map<string, { files: string[]; dir: string }>();
  let seeds: number[] | undefined;
  for (const dir of dirs) {
    if (!fs.existsSync(dir)) throw new Error(`--experiment ${dir}: no such folder`);
    const s = fs.readdirSync(dir).map((d) => /^seed-(\d+)$/.exec(d)).filter((m): m is RegExpExecArray => !!m).map((m) => Number(m[1])).sort((a, b) => a - b);
    if (s.length === 0) throw new Error(`--experiment ${dir}: no seed-<s> folder (expected a classify:experiment or classify:train output folder)`);
    if (seeds && seeds.join() !== s.join()) throw new Error(`--experiment ${dir}: seeds ${s.join(', ')} differ from ${dirs[0]}'s (${seeds.join(', ')})`);
    seeds ??= s;
    let config: { baseline?: string; refocus?: { init?: string } } = {};
    const rj = path.join(dir, 'results.json');
    if (fs.existsSync(rj)) {
      try {
        config = (JSON.parse(fs.readFileSync(rj, 'utf8')) as { config?: typeof config }).config ?? {};
      } catch (e) {
        throw new Error(`--experiment ${dir}: ${rj} is not valid JSON (${(e as Error).message})`);
      }
    }
    const init = config.refocus?.init;
    const stages: Array<[string, (seed: number) => string]> = [
      ['baseline', (seed) => (config.baseline ? path.resolve(dir, config.baseline) : path.join(dir, `seed-${seed}`, 'pretrain', 'final.safetensors'))],
      ['control', (seed) => path.join(dir, `seed-${seed}`, 'control', 'final.safetensors')],
      [init && init !== 'default' ? `refconv-${init}` : 'refconv', (seed) => path.join(dir, `seed-${seed}`, 'refocus', 'final.safetensors')],
    ];
    for (const [name, fileOf] of stages) {
      const files = s.map(fileOf);
      if (!files.every((f) => fs.existsSync(f))) continue;
      const prev = found.get(name);
      if (prev && prev.files.join() !== files.join()) throw new Error(`--experiment: '${name}' is found in ${prev.dir} and in ${dir} with different checkpoints; analyse them separately or name them with --models`);
      if (!prev) found.set(name, { files, dir });
    }
  }
  if (found.size === 0) throw new Error(`--experiment ${dirs.join(' ')}: no seed-<s>/{pretrain,control,refocus}/final.safetensors found`);
  // every name's files: all the same (shared baseline) -> one path, else one per seed
  return [...found].map(([name, { files }]) => `${name}=${new Set(files).size === 1 ? files[0] : files.join(',')}`);
}

const round = (v: number, d = 3): string => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');

/**
 * Kernel skeletons of each model (weights only: any classify, detect or segment checkpoint), with
 * `skeleton-k<K>.png` (one panel per model, one colour scale) and, when a model holds RefConv
 * layers, `skeleton-delta-k<K>.png` (W_t - W_b).
 */
export async function runSkeletons(models: NamedModel[], opts: SkeletonRunOptions): Promise<{ results: ModelSkeletons[]; figures: string[]; markdown: string }> {
  fs.mkdirSync(opts.out, { recursive: true });
  const results: ModelSkeletons[] = models.map((m) => {
    const kernels = readConvKernels(m.file);
    const spatial = kernels.filter((k) => k.shape[0] >= 3);
    if (spatial.length === 0) throw new Error(`${m.file}: no conv kernel with K >= 3 found (model '${m.name}')`);
    return {
      name: m.name,
      file: m.file,
      layers: spatial.length,
      refconvLayers: spatial.filter((k) => k.basis).length,
      kernel: kernelSkeletons(kernels),
      delta: kernelSkeletons(kernels, { field: 'delta' }),
    };
  });
  const figures: string[] = [];
  const ks = [...new Set(results.flatMap((r) => r.kernel.map((s) => s.k)))].sort((a, b) => a - b);
  const md: string[] = ['## Kernel skeletons', '',
    'Mean |w| at each K x K position, normalised per layer by its largest position, averaged over the layers of that K (RefConv layers: the effective kernel W_t). Ratio = mean of the centre row and column / mean of the four corners.', ''];
  for (const k of ks) {
    const panels = results.flatMap((r) => r.kernel.filter((s) => s.k === k).map((s) => ({ title: `${r.name} (${s.layers} layers)`, k, grid: s.grid })));
    const f = `skeleton-k${k}.png`;
    await heatmapPng(path.join(opts.out, f), { title: `Kernel skeleton, ${k}x${k} convs (normalised mean |w|)`, panels });
    figures.push(f);
    md.push(`| model | ${k}x${k} layers | skeleton ratio | centre | corner mean |`, '|---|---|---|---|---|');
    for (const r of results) {
      const s = r.kernel.find((x) => x.k === k);
      if (!s) continue;
      const c = (k * k - 1) / 2;
      const corners = (s.grid[0]! + s.grid[k - 1]! + s.grid[k * (k - 1)]! + s.grid[k * k - 1]!) / 4;
      md.push(`| ${r.name} | ${s.layers} | ${round(s.skeletonRatio)} | ${round(s.grid[c]!)} | ${round(corners)} |`);
    }
    md.push('', `![skeleton ${k}x${k}](${f})`, '');
    const deltas = results.flatMap((r) => r.delta.filter((s) => s.k === k).map((s) => ({ title: `${r.name}: W_t - W_b`, k, grid: s.grid })));
    if (deltas.length) {
      const fd = `skeleton-delta-k${k}.png`;
      await heatmapPng(path.join(opts.out, fd), { title: `What refocusing added, ${k}x${k} (normalised mean |W_t - W_b|)`, panels: deltas });
      figures.push(fd);
      md.push(`![W_t - W_b ${k}x${k}](${fd})`, '');
    }
  }
  if (opts.perLayer) {
    fs.mkdirSync(path.join(opts.out, 'skeleton-layers'), { recursive: true });
    for (const r of results) {
      const panels = r.kernel.flatMap((s) => s.perLayer.map((l) => ({ title: l.layer, k: l.k, grid: l.normalized })));
      const f = path.join('skeleton-layers', `${r.name}.png`);
      await heatmapPng(path.join(opts.out, f), { title: `${r.name}: per-layer skeletons`, panels, cell: 40 });
      figures.push(f);
    }
  }
  return { results, figures, markdown: md.join('\n') };
}

/**
 * Weight-space redundancy of each model from its checkpoint's kernels alone (any classify,
 * detect or segment checkpoint): a table of the means and `weights-cos.png` (per kernel, x = its
 * position in layer-name order, the same for a plain and a RefConv checkpoint of one network).
 */
export async function runWeightRedundancy(models: NamedModel[], out: string): Promise<{ results: Array<CheckpointWeightRedundancy & { name: string }>; figures: string[]; markdown: string }> {
  fs.mkdirSync(out, { recursive: true });
  const results = models.map((m) => ({ name: m.name, ...checkpointWeightRedundancy(m.file) }));
  const f = 'weights-cos.png';
  await lineChartPng(path.join(out, f), { title: 'Weight space, from the checkpoints: mean pairwise |cosine| of output kernels (lower = less redundant)', xLabel: 'conv kernel (layer-name order)', yLabel: '|cos|',
    series: results.map((r) => ({ name: r.name, points: r.layers.filter((l) => Number.isFinite(l.weightCos)).map((l) => [l.depth, l.weightCos] as [number, number]) })) });
  const md = ['## Weight-space redundancy (checkpoint kernels)', '',
    'Mean pairwise |cos| of each conv\'s output kernels (RefConv layers: W_t; 1x1 included), averaged over the kernels; read from the weights alone, so it works on any checkpoint. Lower = less redundant.', '',
    '| model | conv kernels | of them RefConv | weight \\|cos\\| |', '|---|---|---|---|',
    ...results.map((r) => `| ${r.name} | ${r.layers.length} | ${r.layers.filter((l) => l.kind === 'refconv').length} | ${round(r.mean, 4)} |`), '',
    `![${f}](${f})`, ''];
  return { results, figures: [f], markdown: md.join('\n') };
}

/** Where the images of the data-dependent analyses come from. */
export interface DataOptions {
  /** Dataset folder or `fashion-mnist` (as classify's `--data`). */
  data: string;
  format?: 'auto' | 'fashion-mnist' | 'imagefolder';
  /** Seed of the image choice. */
  seed: number;
}

/** A classify checkpoint loaded as a model (see {@link loadModels}). */
export interface LoadedModel extends NamedModel {
  model: tf.LayersModel;
  spec: ModelSpec;
}

/**
 * Loads classify checkpoints as models; they must share input size and channels (one batch of
 * images is fed to all of them).
 */
export function loadModels(models: NamedModel[]): LoadedModel[] {
  const loaded = models.map((m) => {
    try {
      return { ...m, ...loadClassifier(m.file) };
    } catch (e) {
      throw new Error(`model '${m.name}' (${m.file}): ${(e as Error).message} (the data-dependent analyses need a @refconv/classify checkpoint; the kernel skeletons work on any)`);
    }
  });
  const [first] = loaded;
  for (const m of loaded) {
    if (m.spec.inputSize !== first!.spec.inputSize || m.spec.inChannels !== first!.spec.inChannels) {
      throw new Error(`model '${m.name}' takes ${m.spec.inputSize}px x ${m.spec.inChannels} channels but '${first!.name}' takes ${first!.spec.inputSize}px x ${first!.spec.inChannels}; compare models with the same input`);
    }
  }
  return loaded;
}

/** Redundancy results of one model. */
export interface ModelRedundancyResult extends ModelRedundancy {
  name: string;
}

/**
 * Channel redundancy of each model on `images` fixed val images: a table of the means and three
 * line plots per layer (`redundancy-kl.png`, `redundancy-cos.png`, `redundancy-weight-cos.png`).
 */
export async function runRedundancy(models: LoadedModel[], batch: ImageBatch, out: string): Promise<{ results: ModelRedundancyResult[]; figures: string[]; markdown: string }> {
  fs.mkdirSync(out, { recursive: true });
  const results = models.map((m) => ({ name: m.name, ...modelRedundancy(m.model, batch, { label: `[redundancy ${m.name}]` }) }));
  const figures: string[] = [];
  const plots = [
    ['kl', 'redundancy-kl.png', 'Feature space: mean pairwise symmetric KL (higher = less redundant)', 'symmetric KL (nats)'],
    ['cos', 'redundancy-cos.png', 'Feature space: mean pairwise |cosine| of channel maps (lower = less redundant)', '|cos|'],
    ['weightCos', 'redundancy-weight-cos.png', 'Weight space: mean pairwise |cosine| of output kernels (lower = less redundant)', '|cos|'],
  ] as const;
  for (const [key, f, title, y] of plots) {
    await lineChartPng(path.join(out, f), { title, xLabel: 'conv layer (depth)', yLabel: y, series: results.map((r) => ({ name: r.name, points: r.layers.map((l) => [l.depth, l[key]] as [number, number]) })) });
    figures.push(f);
  }
  const md = ['## Channel redundancy', '',
    `${batch.n} validation images (seeded choice), conv outputs before BN and activation; means over the conv layers. KL: higher = less redundant; |cos|: lower = less redundant.`, '',
    '| model | conv layers | feature KL | feature \|cos\| | weight \|cos\| |', '|---|---|---|---|---|',
    ...results.map((r) => `| ${r.name} | ${r.layers.length} | ${round(r.mean.kl, 4)} | ${round(r.mean.cos, 4)} | ${round(r.mean.weightCos, 4)} |`), '',
    ...figures.map((f) => `![${f}](${f})`), ''];
  return { results, figures, markdown: md.join('\n') };
}

/**
 * Top-1 under FGSM and PGD at each radius for each model on the same images: a table and
 * `robustness.png` (x = eps in normalised input space, one line per model and attack).
 */
export async function runRobustness(models: LoadedModel[], batch: ImageBatch, out: string, opts: RobustnessOptions): Promise<{ results: Array<Robustness & { name: string }>; figures: string[]; markdown: string }> {
  fs.mkdirSync(out, { recursive: true });
  const results = models.map((m) => ({ name: m.name, ...robustness(m.model, batch, { ...opts, label: `[attacks ${m.name}]` }) }));
  const f = 'robustness.png';
  await lineChartPng(path.join(out, f), {
    title: 'Top-1 under L-inf attacks (eps in normalised input space)', xLabel: 'eps', yLabel: 'top-1 (%)', yZero: true,
    series: results.flatMap((r) => [
      { name: `${r.name} FGSM`, points: [[0, r.clean] as [number, number], ...r.fgsm.map((p) => [p.eps, p.top1] as [number, number])] },
      { name: `${r.name} PGD-${r.pgdSteps}`, points: [[0, r.clean] as [number, number], ...r.pgd.map((p) => [p.eps, p.top1] as [number, number])] },
    ]),
  });
  const eps = results[0]!.fgsm.map((p) => p.eps);
  const std = batch.std.map((v) => v.toFixed(3)).join(', ');
  const md = ['## Adversarial robustness', '',
    `${batch.n} validation images (seeded choice). L-inf radius eps in the model's normalised input space ((x - mean) / std; 1 unit = std = ${std} in [0, 1] pixel units), adversarial images clamped to the valid image box; FGSM, and PGD with ${results[0]!.pgdSteps} steps of 2.5 eps / steps from a seeded random start; BN in inference mode. Top-1 (%):`, '',
    `| model | clean | ${eps.map((e) => `FGSM ${e}`).join(' | ')} | ${eps.map((e) => `PGD ${e}`).join(' | ')} |`,
    `|---|---|${eps.map(() => '---|').join('')}${eps.map(() => '---|').join('')}`,
    ...results.map((r) => `| ${r.name} | ${r.clean.toFixed(2)} | ${r.fgsm.map((p) => p.top1.toFixed(2)).join(' | ')} | ${r.pgd.map((p) => p.top1.toFixed(2)).join(' | ')} |`), '',
    `![robustness](${f})`, ''];
  return { results, figures: [f], markdown: md.join('\n') };
}

/** Options of {@link runLandscape}. */
export interface LandscapeRunOptions {
  /** 2-D grid points per axis (default 11) over [-range, range] (default 1). */
  points?: number;
  range?: number;
  /** Sharpness radius (default 0.25). */
  radius?: number;
  /** 1-D interpolation points over [0, 1] (default 11). */
  interpPoints?: number;
  seed: number;
}

/**
 * The 2-D filter-normalised surface around each model (`landscape-2d.png`, one colour scale) with
 * its sharpness, and the 1-D interpolation from the first model to each other one
 * (`interpolation.png`), on `batch` (fixed training images). RefConv models in their fused form.
 */
export async function runLandscape(models: LoadedModel[], batch: ImageBatch, out: string, o: LandscapeRunOptions): Promise<{ results: { surfaces: Array<Surface2D & { name: string }>; interpolations: Array<{ from: string; to: string; points: InterpolationPoint[] }> }; figures: string[]; markdown: string }> {
  fs.mkdirSync(out, { recursive: true });
  const forms = models.map((m) => ({ name: m.name, ...landscapeModel(m.model) }));
  try {
    const surfaces = forms.map((m) => ({ name: m.name, ...surface2d(m.model, batch, { points: o.points, range: o.range, radius: o.radius, seed: o.seed, label: `[surface ${m.name}]` }) }));
    const n = o.interpPoints ?? 11;
    const alphas = Array.from({ length: n }, (_, i) => i / (n - 1));
    const interpolations = forms.slice(1).map((m) => ({ from: forms[0]!.name, to: m.name, points: interpolate(forms[0]!.model, m.model, batch, alphas, `[interpolate ${forms[0]!.name} -> ${m.name}]`) }));
    const figures: string[] = [];
    const k = surfaces[0]!.coords.length;
    const all = surfaces.flatMap((s) => s.loss.flat());
    await heatmapPng(path.join(out, 'landscape-2d.png'), {
      title: `Loss L(theta + a d1 + b d2), a = columns, b = rows, both ${surfaces[0]!.coords[0]} .. ${surfaces[0]!.coords[k - 1]} (colour saturates at 5x the loss at the model; red iso-lines at 1.5, 2, 4, 8, ... x the lowest loss at a model)`,
      panels: surfaces.map((s) => ({ title: `${s.name} (sharpness ${s.sharpness.toFixed(3)})`, k, grid: s.loss.flat() })),
      // colours saturate at 5x the largest loss at a model, so the basins stay visible; the cells show the true values
      min: Math.min(...all), max: Math.min(Math.max(...all), 5 * Math.max(...surfaces.map((s) => s.center))), cell: 34, digits: 1,
      // iso-lines at 1.5, 2, 4, 8, ... x the smallest loss at a model (the same levels in every panel)
      contours: [1.5, 2, 4, 8, 16, 32, 64, 128, 256, 512].map((f) => f * Math.min(...surfaces.map((s) => s.center))).filter((l) => l < Math.max(...all)),
    });
    figures.push('landscape-2d.png');
    if (interpolations.length) {
      await lineChartPng(path.join(out, 'interpolation.png'), { title: `Loss along (1 - alpha) ${forms[0]!.name} + alpha other`, xLabel: 'alpha', yLabel: 'loss', series: interpolations.map((r) => ({ name: `${r.from} -> ${r.to}`, points: r.points.map((p) => [p.alpha, p.loss] as [number, number]) })) });
      await lineChartPng(path.join(out, 'interpolation-top1.png'), { title: `Top-1 along (1 - alpha) ${forms[0]!.name} + alpha other`, xLabel: 'alpha', yLabel: 'top-1 (%)', series: interpolations.map((r) => ({ name: `${r.from} -> ${r.to}`, points: r.points.map((p) => [p.alpha, p.top1] as [number, number]) })) });
      figures.push('interpolation.png', 'interpolation-top1.png');
    }
    const md = ['## Loss landscape', '',
      `${batch.n} training images (seeded choice, eval transform), BN in inference mode, RefConv models in their fused form. 2-D: Li et al.'s filter-normalised random directions (seed ${o.seed}), ${k} x ${k} grid; sharpness = mean loss increase at radius ${surfaces[0]!.radius} over 16 directions in that plane (lower = flatter).`, '',
      '| model | loss at the model | sharpness | max loss on the grid |', '|---|---|---|---|',
      ...surfaces.map((s) => `| ${s.name} | ${s.center.toFixed(4)} | ${s.sharpness.toFixed(4)} | ${Math.max(...s.loss.flat()).toFixed(3)} |`), '',
      '![2-D surfaces](landscape-2d.png)', ''];
    if (interpolations.length) {
      md.push('1-D linear interpolation (all weights, BN statistics included), loss / top-1 at alpha = 0, 0.5, 1 and the highest loss on the path:', '',
        '| path | 0 | 0.5 | 1 | max loss |', '|---|---|---|---|---|',
        ...interpolations.map((r) => { const at = (x: number) => r.points.reduce((b, p) => (Math.abs(p.alpha - x) < Math.abs(b.alpha - x) ? p : b)); const f = (p: InterpolationPoint) => `${p.loss.toFixed(3)} / ${p.top1.toFixed(1)}`; return `| ${r.from} -> ${r.to} | ${f(at(0))} | ${f(at(0.5))} | ${f(at(1))} | ${Math.max(...r.points.map((p) => p.loss)).toFixed(3)} |`; }), '',
        '![interpolation](interpolation.png) ![interpolation top-1](interpolation-top1.png)', '');
    }
    return { results: { surfaces, interpolations }, figures, markdown: md.join('\n') };
  } finally {
    for (const f of forms) if (f.owned) f.model.dispose();
  }
}

/** Writes `results.json` (atomically). */
export function writeResultsJson(out: string, results: unknown): void {
  writeFileAtomic(path.join(out, 'results.json'), Buffer.from(JSON.stringify(results, null, 1) + '\n'));
}
