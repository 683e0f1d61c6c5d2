/**
 * `nx run analysis:run -- --models baseline=A.safetensors control=B.safetensors refconv=C.safetensors
 *   [--data fashion-mnist] [--analyses skeleton ...] [--out DIR] [--json]`
 *
 * Writes report.md, results.json and the PNG figures into --out (default runs/analysis/<date>).
 */
import * as path from 'node:path';
import { describeBackend, initBackend, type BackendName } from '@refconv/core';
import { createCli, defaultRunDir, resolvePaths, resolveUserPath, writeFileAtomic } from '@refconv/engine';
import { loadModels, parseModelArgs, runLandscape, runRedundancy, runRobustness, runSkeletons, writeResultsJson } from '../run.js';
import { loadImageBatch } from '../data.js';

const ANALYSES = ['skeleton', 'redundancy', 'robustness', 'landscape'] as const;
const DATA_ANALYSES = ['redundancy', 'robustness', 'landscape'];

async function main(argv: string[]): Promise<void> {
  const a = await createCli(argv, 'analysis:run')
    .option('models', { type: 'string', array: true, demandOption: true, describe: 'checkpoints as name=path (.safetensors written by classify, detect or segment)' })
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
    .parseAsync();
  const info = await initBackend(a.backend as BackendName);
  if (!a.json) console.log(describeBackend(info));
  // name=path: the path part is relative to the folder the command was run from
  const models = parseModelArgs(a.models as string[]).map((m) => ({ ...m, file: resolveUserPath(m.file) }));
  const out = a.out ?? defaultRunDir('analysis', new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19));
  const results: Record<string, unknown> = { models };
  const md: string[] = ['# RefConv analyses', '', `Command: \`npx nx run analysis:run -- ${argv.join(' ')}\``, '', '| name | checkpoint |', '|---|---|', ...models.map((m) => `| ${m.name} | ${m.file} |`), ''];
  const analyses = a.analyses as string[];
  if (analyses.includes('skeleton')) {
    if (!a.json) console.log('kernel skeletons ...');
    const s = await runSkeletons(models, { out, perLayer: a.perLayer });
    results.skeleton = s.results;
    md.push(s.markdown);
  }
  if (analyses.some((x) => DATA_ANALYSES.includes(x))) {
    const loaded = loadModels(models);
    const spec = loaded[0]!.spec;
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
    for (const m of loaded) m.model.dispose();
  }
  writeFileAtomic(path.join(out, 'report.md'), md.join('\n') + '\n');
  writeResultsJson(out, results);
  if (a.json) process.stdout.write(JSON.stringify(results) + '\n');
  else console.log(`report: ${path.join(out, 'report.md')}`);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`analysis:run failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
