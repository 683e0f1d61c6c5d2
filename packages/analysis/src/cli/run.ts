/**
 * `nx run analysis:run -- --models baseline=A.safetensors control=B.safetensors refconv=C.safetensors
 *   [--data fashion-mnist] [--analyses skeleton ...] [--out DIR] [--json]`
 *
 * Writes report.md, results.json and the PNG figures into --out (default runs/analysis/<date>).
 * `name=a.safetensors,b.safetensors` (one checkpoint per seed) runs every analysis once per seed
 * into `--out/run-<i>/` and writes the mean ± std over the runs into `--out/report.md` and
 * `results.json`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeBackend, initBackend, type BackendName } from '@refconv/core';
import { createCli, defaultRunDir, resolvePaths, resolveUserPath, writeFileAtomic } from '@refconv/engine';
import { experimentModelArgs, loadModels, parseModelSets, runLandscape, runRedundancy, runRobustness, runSkeletons, runWeightRedundancy, writeResultsJson, type NamedModel } from '../run.js';
import { aggregateMarkdown, aggregateRuns, pairedDifferences, runMetrics, type RunResultsLike } from '../aggregate.js';
import { loadImageBatch } from '../data.js';

const ANALYSES = ['skeleton', 'weights', 'redundancy', 'robustness', 'landscape'] as const;
const DATA_ANALYSES = ['redundancy', 'robustness', 'landscape'];

function cli(argv: string[]) {
  return createCli(argv, 'analysis:run')
    .option('experiment', { type: 'string', array: true, describe: 'classify:experiment output folders: every seed\'s baseline, control and refocus checkpoints (added after --models)' })
    .option('results', { type: 'string', array: true, describe: 'results.json files of earlier single runs (one per seed): aggregated with the runs of --models / --experiment, not recomputed' })
    .option('reference', { type: 'string', describe: "with several runs: also the paired differences model - this model per run, mean ± std (default: 'control' when there is one)" })
    .option('models', { type: 'string', array: true, describe: 'checkpoints as name=path (.safetensors written by classify, detect or segment); name=a,b,c gives one checkpoint per run (seed): mean ± std over the runs' })
    .option('analyses', { type: 'string', array: true, choices: ANALYSES, default: [...ANALYSES], describe: 'which analyses to run' })
    .option('per-layer', { type: 'boolean', default: false, describe: 'also write per-layer skeleton heatmaps' })
    .option('data', { type: 'string', default: 'fashion-mnist', describe: "dataset folder or 'fashion-mnist' (as classify's --data)" })
    .option('format', { choices: ['auto', 'fashion-mnist', 'imagefolder'] as const, default: 'auto' as const })
    .option('images', { type: 'number', default: 128, describe: 'validation images for the redundancy analysis (a seeded choice)' })
    .option('attack-images', { type: 'number', default: 256, describe: 'validation images for the robustness analysis (a seeded choice)' })
    .option('eps', { type: 'number', array: true, default: [0.01, 0.02, 0.05, 0.1, 0.2], describe: 'L-inf attack radii in the normalised input space' })
    .option('pgd-steps', { type: 'number', default: 10, describe: 'PGD iterations (step 2.5 eps / steps, random start)' })
    .option('landscape-images', { type: 'number', default: 256, describe: 'training images for the loss landscape (a seeded choice, eval transform)' })
    .option('grid', { type: 'number', default: 11, describe: '2-D landscape grid points per axis' })
    .option('range', { type: 'number', default: 1, describe: '2-D landscape coordinates span [-range, range]' })
    .option('radius', { type: 'number', default: 0.25, describe: 'sharpness radius in the filter-normalised plane' })
    .option('interp-points', { type: 'number', default: 11, describe: '1-D interpolation points over alpha in [0, 1]' })
    .option('seed', { type: 'number', default: 0, describe: 'seed of every random choice (images, directions)' })
    .option('out', { type: 'string', describe: 'output folder (default <repo>/runs/analysis/<timestamp>)' })
    .option('json', { type: 'boolean', default: false, describe: 'print results.json as one line on stdout' })
    .option('backend', { choices: ['auto', 'tensorflow', 'cpu', 'wasm'] as const, default: 'auto' as const })
    .middleware(resolvePaths(['out', 'data'], (v) => v === 'fashion-mnist'))
    .check((x) => {
      // a string (not a thrown Error) is a usage error: exit 2 with the usage
      if (!(x.models as string[] | undefined)?.length && !(x.experiment as string[] | undefined)?.length && !(x.results as string[] | undefined)?.length) return 'give the checkpoints with --models name=path ... and / or --experiment DIR (or earlier runs\' --results FILE ...)';
      return true;
    });
}
type Args = Awaited<ReturnType<ReturnType<typeof cli>['parseAsync']>>;

async function main(argv: string[]): Promise<void> {
  const a = await cli(argv).parseAsync();
  const info = await initBackend(a.backend as BackendName);
  if (!a.json) console.log(describeBackend(info));
  // name=path[,path...]: the paths are relative to the folder the command was run from
  const args = [...((a.models as string[] | undefined) ?? []), ...experimentModelArgs(((a.experiment as string[] | undefined) ?? []).map((d) => resolveUserPath(d)))];
  const sets = args.length ? parseModelSets(args).map((set) => set.map((m) => ({ ...m, file: resolveUserPath(m.file) }))) : [];
  const out = a.out ?? defaultRunDir('analysis', new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19));
  const command = `npx nx run analysis:run -- ${argv.join(' ')}`;
  // earlier runs, read back (a single run's results.json each)
  const earlier = ((a.results as string[] | undefined) ?? []).map((f) => readRunResults(resolveUserPath(f)));
  const total = sets.length + earlier.length;
  const runs: Array<Record<string, unknown>> = [];
  const labels: string[] = [];
  const checkpoints: NamedModel[][] = [];
  for (const e of earlier) {
    runs.push(e.results);
    labels.push(e.file);
    checkpoints.push((e.results.models as NamedModel[] | undefined) ?? []);
  }
  for (const [i, models] of sets.entries()) {
    const dir = total > 1 ? path.join(out, `run-${i}`) : out;
    if (!a.json && total > 1) console.log(`run ${i + 1}/${sets.length}: ${models.map((m) => `${m.name}=${m.file}`).join(' ')}`);
    runs.push(await analyseRun(models, a, dir, command));
    labels.push(total > 1 ? `run-${i}` : out);
    checkpoints.push(models);
  }
  let results: Record<string, unknown> = runs[0]!;
  if (total > 1) {
    const metrics = runs.map((r) => runMetrics(r as RunResultsLike));
    const agg = aggregateRuns(metrics);
    const reference = (a.reference as string | undefined) ?? (agg.models.includes('control') ? 'control' : undefined);
    if (reference && !agg.models.includes(reference)) throw new Error(`--reference ${reference}: no such model (models: ${agg.models.join(', ')})`);
    const diff = reference ? aggregateRuns(pairedDifferences(metrics, reference)) : undefined;
    results = { runs: runs.map((r, i) => ({ label: labels[i], ...r })), aggregate: agg, ...(diff ? { differences: { reference, ...diff } } : {}) };
    const link = (l: string) => (l.endsWith('.json') ? `\`${l}\`` : `[${l}](${l}/report.md)`);
    const md = ['# RefConv analyses, several runs', '', `Command: \`${command}\``, '',
      '| run | checkpoints |', '|---|---|',
      ...checkpoints.map((set, i) => `| ${link(labels[i]!)} | ${set.map((m) => `${m.name}=${m.file}`).join(' ')} |`), '',
      aggregateMarkdown(agg, labels.map((l, i) => (l.endsWith('.json') ? `earlier run ${i}` : l))),
      ...(diff ? [aggregateMarkdown(diff, labels, `## Paired differences to ${reference}, mean ± std over ${diff.runs} runs`)] : [])];
    writeFileAtomic(path.join(out, 'report.md'), md.join('\n') + '\n');
    writeResultsJson(out, results);
  }
  if (a.json) process.stdout.write(JSON.stringify(results) + '\n');
  else console.log(`report: ${path.join(out, 'report.md')}`);
}

/** A single run's results.json, read back for aggregation; errors name the file. */
function readRunResults(file: string): { file: string; results: Record<string, unknown> } {
  let results: Record<string, unknown>;
  try {
    results = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`--results ${file}: ${(e as Error).message}`);
  }
  if (results.runs) throw new Error(`--results ${file}: holds several runs already (an aggregate); give its run-<i>/results.json files`);
  if (!results.skeleton && !results.weights && !results.redundancy && !results.robustness && !results.landscape) throw new Error(`--results ${file}: no analysis results in it (expected an analysis:run results.json)`);
  return { file, results };
}

/** Every requested analysis on one set of models (one checkpoint per name), written into `out`. */
async function analyseRun(models: NamedModel[], a: Args, out: string, command: string): Promise<Record<string, unknown>> {
  const results: Record<string, unknown> = { models };
  const md: string[] = ['# RefConv analyses', '', `Command: \`${command}\``, '', '| name | checkpoint |', '|---|---|', ...models.map((m) => `| ${m.name} | ${m.file} |`), ''];
  const analyses = a.analyses as string[];
  if (analyses.includes('skeleton')) {
    if (!a.json) console.log('kernel skeletons ...');
    const s = await runSkeletons(models, { out, perLayer: a.perLayer });
    results.skeleton = s.results;
    md.push(s.markdown);
  }
  if (analyses.includes('weights')) {
    if (!a.json) console.log('weight-space redundancy (checkpoint kernels) ...');
    const w = await runWeightRedundancy(models, out);
    results.weights = { models: w.results };
    md.push(w.markdown);
  }
  if (analyses.some((x) => DATA_ANALYSES.includes(x))) {
    const loaded = loadModels(models);
    const spec = loaded[0]!.spec;
    try {
      if (analyses.includes('redundancy')) {
        const batch = await loadImageBatch({ data: a.data, format: a.format, split: 'val', inputSize: spec.inputSize, n: a.images, seed: a.seed });
        const r = await runRedundancy(loaded, batch, out);
        results.redundancy = { images: batch.n, seed: a.seed, data: a.data, models: r.results };
        md.push(r.markdown);
      }
      if (analyses.includes('robustness')) {
        const batch = await loadImageBatch({ data: a.data, format: a.format, split: 'val', inputSize: spec.inputSize, n: a.attackImages, seed: a.seed + 1 });
        const r = await runRobustness(loaded, batch, out, { eps: a.eps, pgdSteps: a.pgdSteps, seed: a.seed });
        results.robustness = { images: batch.n, seed: a.seed, data: a.data, inputSpace: { mean: batch.mean, std: batch.std }, models: r.results };
        md.push(r.markdown);
      }
      if (analyses.includes('landscape')) {
        const batch = await loadImageBatch({ data: a.data, format: a.format, split: 'train', inputSize: spec.inputSize, n: a.landscapeImages, seed: a.seed + 2 });
        const r = await runLandscape(loaded, batch, out, { points: a.grid, range: a.range, radius: a.radius, interpPoints: a.interpPoints, seed: a.seed });
        results.landscape = { images: batch.n, seed: a.seed, data: a.data, ...r.results };
        md.push(r.markdown);
      }
    } finally {
      for (const m of loaded) m.model.dispose();
    }
  }
  writeFileAtomic(path.join(out, 'report.md'), md.join('\n') + '\n');
  writeResultsJson(out, results);
  return results;
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`analysis:run failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
