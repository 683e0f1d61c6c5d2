/**
 * `nx run analysis:run -- --models baseline=A.safetensors control=B.safetensors refconv=C.safetensors
 *   [--data fashion-mnist] [--analyses skeleton ...] [--out DIR] [--json]`
 *
 * Writes report.md, results.json and the PNG figures into --out (default runs/analysis/<date>).
 */
import * as path from 'node:path';
import { describeBackend, initBackend, type BackendName } from '@refconv/core';
import { createCli, defaultRunDir, resolvePaths, resolveUserPath, writeFileAtomic } from '@refconv/engine';
import { parseModelArgs, runSkeletons, writeResultsJson } from '../run.js';

const ANALYSES = ['skeleton'] as const;

async function main(argv: string[]): Promise<void> {
  const a = await createCli(argv, 'analysis:run')
    .option('models', { type: 'string', array: true, demandOption: true, describe: 'checkpoints as name=path (.safetensors written by classify, detect or segment)' })
    .option('analyses', { type: 'string', array: true, choices: ANALYSES, default: [...ANALYSES], describe: 'which analyses to run' })
    .option('per-layer', { type: 'boolean', default: false, describe: 'also write per-layer skeleton heatmaps' })
    .option('out', { type: 'string', describe: 'output folder (default <repo>/runs/analysis/<timestamp>)' })
    .option('json', { type: 'boolean', default: false, describe: 'print results.json as one line on stdout' })
    .option('backend', { choices: ['auto', 'tensorflow', 'cpu', 'wasm'] as const, default: 'auto' as const })
    .middleware(resolvePaths(['out']))
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
  writeFileAtomic(path.join(out, 'report.md'), md.join('\n') + '\n');
  writeResultsJson(out, results);
  if (a.json) process.stdout.write(JSON.stringify(results) + '\n');
  else console.log(`report: ${path.join(out, 'report.md')}`);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`analysis:run failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
