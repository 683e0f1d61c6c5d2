/**
 * The experiment report: a Markdown file with last-epoch top-1/top-5 (mean ± sample std
 * over seeds), params, FLOPs and latency of baseline / control / RefConv / fused, the
 * per-seed numbers, the fused-equals-unfused check, and PNG curves.
 */
import * as path from 'node:path';
import { describeChanges, lineChartPng, loadCheckpoint, writeFileAtomic, type Series } from '@refconv/engine';
import type { RunConfig } from './config.js';
import type { EpochRecord } from './train.js';
import { MODEL_KINDS, type ModelKindName, type SeedResult } from './protocol.js';

/** Mean and sample standard deviation (n - 1; 0 for a single value). */
export function meanStd(values: number[]): { mean: number; std: number; n: number } {
  const n = values.length;
  if (n === 0) return { mean: NaN, std: NaN, n };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}

type ModelSummaryLike = { top5: number };

/** Where the baseline came from: this run's pretrain stage or a checkpoint passed with --baseline. */
function describeBaseline(cfg: RunConfig): string {
  if (!cfg.baseline) return `baseline pretrained here for ${cfg.pretrain.epochs} epochs (lr ${cfg.pretrain.lr})`;
  let how = 'an external checkpoint';
  try {
    const state = loadCheckpoint(cfg.baseline).state;
    const optim = state.extra?.optim as { epochs?: number; lr?: number } | undefined;
    if (optim?.epochs !== undefined) how = `pretrained by @refconv/classify for ${optim.epochs} epochs (lr ${optim.lr})`;
  } catch {
    // the report still names the file
  }
  return `baseline \`${cfg.baseline}\` (${how}, shared by all seeds)`;
}

/** What the run trained: only the stages it ran (a pretrain-only run does not mention refocus/control). */
function describeStages(cfg: RunConfig): string {
  const fine = (['refocus', 'control'] as const).filter((s) => cfg.stages.includes(s));
  const parts: string[] = [];
  if (cfg.baseline || cfg.stages.includes('pretrain')) parts.push(describeBaseline(cfg));
  if (fine.length) {
    parts.push(
      `then ${fine.join(' and ')} ${cfg.finetune.epochs} epochs${fine.length > 1 ? ' each' : ''} (lr ${cfg.finetune.lr}${fine.length > 1 ? ', same schedule' : ''})` +
        (cfg.stages.includes('refocus') ? `; RefConv map_k ${cfg.refocus.mapK}, grouping ${cfg.refocus.grouping}, init ${cfg.refocus.init}, frozen ${cfg.refocus.frozen}` : ''),
    );
  }
  return parts.join(', ');
}

const fmt = (m: { mean: number; std: number; n: number }, digits = 2) => (m.n === 0 ? 'n/a' : m.n === 1 ? m.mean.toFixed(digits) : `${m.mean.toFixed(digits)} ± ${m.std.toFixed(digits)}`);
const LABEL: Record<ModelKindName, string> = { baseline: 'baseline (pretrained)', control: 'control (equal epochs, plain)', refconv: 'RefConv (unfused)', fused: 'RefConv fused' };

/** Writes report.md, results.json and the curve PNGs into `cfg.out`; returns the report path. */
export async function writeReport(cfg: RunConfig, results: SeedResult[], command: string, dataDescription: string, numClasses?: number, failedTasks?: Array<{ task: string; detail: string; log?: string }>): Promise<string> {
  const out = cfg.out;
  const lines: string[] = [];
  lines.push(`# RefConv classification experiment`, '');
  lines.push(`Command: \`${command}\``, '');
  lines.push(`Data: ${dataDescription}`, '');
  lines.push(`Model: \`${cfg.arch}\` width ${cfg.width}, input ${cfg.inputSize}; ${describeStages(cfg)}. Seeds: ${results.map((r) => r.seed).join(', ')}.`, '');
  const changed = results.flatMap((r) => (r.changedOptions ?? []).map((c) => `seed ${r.seed} ${c.stage}: ${describeChanges([c])}`));
  if (changed.length) lines.push(`**Resumed with changed options** (\`--accept-changed-options\`): ${changed.join('; ')}.`, '');
  if (failedTasks?.length) {
    lines.push(`**Failed tasks** (Slurm; their models are missing from the tables below, marked \`failed\`):`, '');
    for (const f of failedTasks) lines.push(`- \`${f.task}\`: ${f.detail}${f.log ? ` (log \`${f.log}\`)` : ''}`);
    lines.push('');
  }
  const failedStage = (seed: number, kind: string) => failedTasks?.some((f) => f.task.endsWith(`/seed-${seed}/${kind === 'refconv' || kind === 'fused' ? 'refocus' : kind === 'baseline' ? 'pretrain' : kind}`));
  lines.push('Accuracies are the **last epoch** of each model (not the best epoch), mean ± sample std over seeds.', '');
  const top5Cell = (ms: ModelSummaryLike[]) => (numClasses !== undefined && numClasses <= 5 ? `n/a (${numClasses} classes)` : fmt(meanStd(ms.map((m) => m.top5))));
  lines.push('| model | params | trainable | MMACs | top-1 (%) | top-5 (%) | latency batch 1 (ms, median) |', '|---|---:|---:|---:|---:|---:|---:|');
  for (const kind of MODEL_KINDS) {
    const ms = results.map((r) => r.models[kind]).filter((m) => m !== undefined);
    if (ms.length === 0) continue;
    const m0 = ms[0]!;
    lines.push(
      `| ${LABEL[kind]} | ${m0.params.toLocaleString('en-US')} | ${m0.trainableParams.toLocaleString('en-US')} | ${(m0.flops / 1e6).toFixed(2)} | ${fmt(meanStd(ms.map((m) => m.top1)))} | ${top5Cell(ms)} | ${fmt(meanStd(ms.map((m) => m.latency.medianMs)), 3)} |`,
    );
  }
  lines.push('');
  const deltas = results.filter((r) => r.models.refconv && r.models.control).map((r) => r.models.refconv!.top1 - r.models.control!.top1);
  if (deltas.length) lines.push(`RefConv − control top-1 per seed: ${deltas.map((d) => d.toFixed(2)).join(', ')} → ${fmt(meanStd(deltas))} points.`, '');
  const checks = results.filter((r) => r.models.fused && r.models.refconv && r.models.baseline);
  for (const r of checks) {
    const f = r.models.fused!;
    const u = r.models.refconv!;
    const b = r.models.baseline!;
    lines.push(
      `Seed ${r.seed} fuse check: fused params ${f.params === b.params ? '=' : '≠'} baseline (${f.params} vs ${b.params}), ` +
        `FLOPs ${f.flops === b.flops ? '=' : '≠'} baseline, top-1 fused ${f.top1.toFixed(2)} vs unfused ${u.top1.toFixed(2)}, ` +
        `${r.fusedPredictionMismatches ?? '?'} of ${u.images} predictions differ.`,
    );
  }
  if (checks.length) lines.push('');
  lines.push('## Per seed', '', '| seed | ' + MODEL_KINDS.map((k) => `${k} top-1 / top-5`).join(' | ') + ' |', '|---|' + MODEL_KINDS.map(() => '---:').join('|') + '|');
  for (const r of results) {
    lines.push(`| ${r.seed} | ` + MODEL_KINDS.map((k) => (r.models[k] ? `${r.models[k]!.top1.toFixed(2)} / ${r.models[k]!.top5.toFixed(2)}` : failedStage(r.seed, k) ? 'failed' : '–')).join(' | ') + ' |');
  }
  lines.push('');
  const bad = results.flatMap((r) => r.badImages);
  if (bad.length) lines.push(`Unreadable images skipped: ${bad.length} (${[...new Set(bad.map((b) => b.file))].slice(0, 10).join(', ')}${bad.length > 10 ? ', ...' : ''})`, '');

  const curves = await writeCurves(out, results);
  if (curves.length) {
    lines.push('## Curves', '');
    for (const c of curves) lines.push(`![${c}](${c})`, '');
  }
  lines.push('## Configuration', '', '```json', JSON.stringify(cfg, null, 1), '```', '');
  const report = path.join(out, 'report.md');
  writeFileAtomic(report, lines.join('\n'));
  writeFileAtomic(path.join(out, 'results.json'), JSON.stringify({ command, dataDescription, numClasses, config: cfg, results, ...(failedTasks?.length ? { failedTasks } : {}) }, null, 1));
  return report;
}

async function writeCurves(out: string, results: SeedResult[]): Promise<string[]> {
  const written: string[] = [];
  const value = { valTop1: (e: EpochRecord) => e.val?.top1 ?? NaN, trainLoss: (e: EpochRecord) => e.trainLoss };
  const series = (key: 'valTop1' | 'trainLoss', stages: Array<'pretrain' | 'refocus' | 'control'>): Series[] =>
    results.flatMap((r) =>
      stages.filter((s) => r.histories[s]?.length).map((s) => ({ name: `${s} seed ${r.seed}`, points: r.histories[s]!.map((e) => [e.epoch, value[key](e)] as [number, number]) })),
    );
  const plots = [
    { file: 'finetune-val-top1.png', title: 'RefConv vs equal-epoch control: val top-1', y: 'val top-1 (%)', s: series('valTop1', ['refocus', 'control']) },
    { file: 'finetune-train-loss.png', title: 'RefConv vs equal-epoch control: train loss', y: 'train loss', s: series('trainLoss', ['refocus', 'control']) },
    { file: 'pretrain.png', title: 'Baseline pretraining: val top-1', y: 'val top-1 (%)', s: series('valTop1', ['pretrain']) },
  ];
  for (const p of plots) {
    if (p.s.length === 0) continue;
    await lineChartPng(path.join(out, p.file), { title: p.title, xLabel: 'epoch (of the stage)', yLabel: p.y, series: p.s });
    written.push(p.file);
  }
  return written;
}
