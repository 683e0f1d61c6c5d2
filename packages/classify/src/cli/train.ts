/**
 * `nx run classify:train` (one seed by default) and `nx run classify:experiment` (3 seeds):
 * the whole RefConv protocol, then the report. Run with `--help` for every option.
 */
import * as path from 'node:path';
import { describeBackend, initBackend, type BackendName } from '@refconv/core';
import { applyDeprecatedAliases, createCli, defaultRunDir, userCwd, formatStatus, planStatus, PreemptedError, PREEMPTED_EXIT_CODE, readPlan, submitPlan } from '@refconv/engine';
import { BatchLoader, type BadImage } from '../data/loader.js';
import { prepareData, runSeed, type SeedResult } from '../protocol.js';
import { writeReport } from '../report.js';
import type { RunConfig } from '../config.js';
import { archOut, experimentPlan, launcherOptions, LAUNCHER_OPTIONS, dropOptions, reportStages, slurmResources, type FailedTask } from '../slurm.js';
import { parseArchs, writeGridReport, type GridArch } from './grid-report.js';
import { DEPRECATED_ALIASES, protocolOptions, toRunConfig } from './args.js';

/** Runs the protocol CLI; `defaultSeeds` is 1 for `train` and 3 for `experiment`. */
export async function main(argv: string[], scriptName: string, defaultSeeds: number): Promise<void> {
  argv = applyDeprecatedAliases(argv, DEPRECATED_ALIASES, scriptName);
  const args = await launcherOptions(protocolOptions(createCli(argv, scriptName), defaultSeeds, defaultRunDir('classify', defaultSeeds === 1 ? 'train' : 'experiment')))
    .option('archs', { type: 'string', array: true, describe: 'an architecture grid: one experiment per arch (comma-separated) in <out>/<arch>/, and one report over all in <out>/' })
    .middleware((a) => {
      // --status / --slurm-report name folders relative to where the user ran the command
      for (const k of ['status', 'slurm-report', 'slurmReport'] as const) if (typeof a[k] === 'string') a[k] = path.resolve(userCwd(), a[k] as string);
    })
    .parseAsync();
  if (args.status !== undefined) {
    console.log(formatStatus(planStatus(readPlan(path.join(args.status, 'slurm')))));
    return;
  }
  const cfg = toRunConfig(args);
  const archs = parseArchs(args.archs);
  if (archs && argv.some((a) => /^--arch(=|$)/.test(a))) throw new Error('give either --arch (one experiment) or --archs (a grid), not both');
  if (archs && cfg.baseline) throw new Error('--from is one baseline checkpoint of one architecture: a grid over --archs pretrains every architecture (run one experiment per --arch with --from instead)');
  const shownArgv = dropOptions(argv, LAUNCHER_OPTIONS);
  const shownCommand = `nx run classify:${defaultSeeds === 1 ? 'train' : 'experiment'}${shownArgv.length ? ' -- ' + shownArgv.join(' ') : ''}`;
  if (args.launcher === 'slurm') {
    const plan = experimentPlan(cfg, argv, slurmResources(args), undefined, shownCommand, archs);
    submitPlan(plan, { dryRun: args.dryRun });
    if (!args.dryRun) console.log(`status: npx nx run classify:experiment -- --status ${cfg.out}`);
    return;
  }
  const planned = args.slurmReport ? (readPlan(args.slurmReport).meta?.command as string | undefined) : undefined;
  // the report records the user's command as a local run would (without the launcher's options)
  const command = planned ?? `nx run classify:${defaultSeeds === 1 ? 'train' : 'experiment'}${argv.length ? ' -- ' + argv.join(' ') : ''}`;
  const info = await initBackend(args.backend as BackendName);
  console.log(describeBackend(info));
  if (!archs) {
    await runExperiment(cfg, args, command);
    return;
  }
  // a grid: each architecture's experiment exactly as `--arch <arch> --out <out>/<arch>` runs it, then the grid's report
  const grid: GridArch[] = [];
  let dataDescription = '';
  for (const arch of archs) {
    const r = await runExperiment({ ...cfg, arch, out: archOut(cfg.out, arch) }, args, command);
    grid.push({ arch, out: archOut(cfg.out, arch), results: r.results, failed: r.failed });
    dataDescription = r.dataDescription;
  }
  if (!args.slurmTask) console.log(`grid report: ${path.resolve(writeGridReport(cfg.out, grid, command, dataDescription))}`);
}

/** One architecture's experiment (every seed, or a Slurm task's part of it); writes its report unless it is a Slurm task. */
async function runExperiment(cfg: RunConfig, args: { slurmReport?: string; slurmTask: boolean }, command: string): Promise<{ results: SeedResult[]; failed: FailedTask[]; dataDescription: string }> {
  let stagesOf = (_seed: number) => cfg.stages;
  let failedTasks: FailedTask[] | undefined;
  if (args.slurmReport) {
    const r = reportStages(cfg, args.slurmReport);
    stagesOf = r.stagesOf;
    failedTasks = r.failed;
    for (const f of failedTasks) console.error(`task ${f.task} failed: ${f.detail} (log ${f.log})`);
  }
  const badWhileCaching: BadImage[] = [];
  const p = await prepareData(cfg, badWhileCaching);
  const dataDescription = `${p.data.name} (${p.data.root}): ${p.train.size} train / ${p.val.size} val images, ${p.data.classNames.length} classes`;
  console.log(dataDescription);
  const loader = new BatchLoader({ batchSize: cfg.pretrain.batchSize, workers: cfg.workers, prefetch: cfg.prefetch, skipBad: cfg.skipBadImages });
  loader.badImages.push(...badWhileCaching);
  const results: SeedResult[] = [];
  let report = '';
  try {
    for (const seed of cfg.seeds) {
      // the Slurm report job evaluates the stages whose tasks finished (their stages are reused via resume)
      results.push(await runSeed(args.slurmReport ? { ...cfg, stages: stagesOf(seed), resume: true } : cfg, seed, p, loader));
      // rewritten after every seed, so an interrupted experiment still leaves a report of what finished
      // (a Slurm task writes none: the report job does, once every task has ended)
      if (!args.slurmTask) report = await writeReport(cfg, results, command, dataDescription, p.data.classNames.length, failedTasks);
    }
  } finally {
    await loader.close();
  }
  if (report) console.log(`report: ${path.resolve(report)}`);
  return { results, failed: failedTasks ?? [], dataDescription };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2), 'classify:train', 1).catch((e: Error) => {
    console.error(`classify:train failed: ${e.message}`);
    process.exit(e instanceof PreemptedError ? PREEMPTED_EXIT_CODE : 1);
  });
}
