/**
 * The report of an architecture grid (`classify:experiment --archs a,b`): each architecture's
 * experiment is in `<out>/<arch>/` (its own report.md / results.json, exactly what
 * `--arch <arch> --out <out>/<arch>` writes); this writes `<out>/report.md` and
 * `<out>/results.json` over all of them, the same for a local and a Slurm-run grid.
 */
import * as path from 'node:path';
import { writeFileAtomic } from '@refconv/engine';
import { MODEL_KINDS, type SeedResult } from '../protocol.js';
import { meanStd } from '../report.js';
import type { FailedTask } from '../slurm.js';

/** One architecture's experiment in a grid. */
export interface GridArch {
  arch: string;
  /** `<out>/<arch>`. */
  out: string;
  results: SeedResult[];
  /** Its tasks that did not finish (Slurm). */
  failed: FailedTask[];
}

const cell = (values: number[]) => {
  const m = meanStd(values);
  return m.n === 0 ? 'n/a' : m.n === 1 ? m.mean.toFixed(2) : `${m.mean.toFixed(2)} ± ${m.std.toFixed(2)}`;
};

/**
 * Parses `--archs` (comma-separated and/or repeated) into distinct names; an empty name or a
 * name that is not a plain folder name is an error.
 */
export function parseArchs(given: string[] | undefined): string[] | undefined {
  if (!given?.length) return undefined;
  const archs = given.flatMap((a) => String(a).split(',')).map((a) => a.trim());
  for (const a of archs) if (!/^[A-Za-z0-9_.-]+$/.test(a)) throw new Error(`--archs: '${a}' is not an architecture name (comma-separated names, e.g. --archs cifar_resnet20,resnet18)`);
  if (new Set(archs).size !== archs.length) throw new Error(`--archs names an architecture twice: ${archs.join(',')}`);
  return archs;
}

/** Writes the grid's report.md and results.json into `out`; returns the report path. */
export function writeGridReport(out: string, grid: GridArch[], command: string, dataDescription: string): string {
  const lines = ['# RefConv classification grid', '', `Command: \`${command}\``, '', `Data: ${dataDescription}`, ''];
  lines.push(`Architectures: ${grid.map((g) => `\`${g.arch}\` ([report](${g.arch}/report.md))`).join(', ')}. Seeds: ${[...new Set(grid.flatMap((g) => g.results.map((r) => r.seed)))].join(', ')}.`, '');
  const failed = grid.flatMap((g) => g.failed);
  if (failed.length) {
    lines.push('**Failed tasks** (Slurm; their models are missing from the table below):', '');
    for (const f of failed) lines.push(`- \`${f.task}\`: ${f.detail}${f.log ? ` (log \`${f.log}\`)` : ''}`);
    lines.push('');
  }
  lines.push('Last-epoch top-1 (%) on the val split, mean ± sample std over the seeds that finished (n).', '');
  lines.push(`| arch | ${MODEL_KINDS.join(' | ')} | RefConv − control |`, `|---|${MODEL_KINDS.map(() => '---:|').join('')}---:|`);
  const rows = grid.map((g) => {
    const models = Object.fromEntries(
      MODEL_KINDS.map((k) => {
        const top1 = g.results.map((r) => r.models[k]?.top1).filter((v): v is number => v !== undefined);
        return [k, { top1: meanStd(top1), n: top1.length }];
      }),
    );
    const deltas = g.results.filter((r) => r.models.refconv && r.models.control).map((r) => r.models.refconv!.top1 - r.models.control!.top1);
    lines.push(`| \`${g.arch}\` | ${MODEL_KINDS.map((k) => { const v = g.results.map((r) => r.models[k]?.top1).filter((x): x is number => x !== undefined); return v.length ? `${cell(v)} (${v.length})` : 'n/a'; }).join(' | ')} | ${deltas.length ? cell(deltas) : 'n/a'} |`);
    return { arch: g.arch, dir: g.arch, models, refconvMinusControl: meanStd(deltas), seeds: g.results.map((r) => r.seed), ...(g.failed.length ? { failedTasks: g.failed } : {}) };
  });
  lines.push('');
  const file = path.join(out, 'report.md');
  writeFileAtomic(file, lines.join('\n'));
  writeFileAtomic(path.join(out, 'results.json'), JSON.stringify({ command, dataDescription, archs: rows, ...(failed.length ? { failedTasks: failed } : {}) }, null, 1));
  return file;
}
