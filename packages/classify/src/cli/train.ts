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
import { experimentPlan, launcherOptions, LAUNCHER_OPTIONS, dropOptions, reportStages, slurmResources, type FailedTask } from '../slurm.js';
import { DEPRECATED_ALIASES, protocolOptions, toRunConfig } from './args.js';

/** Runs the protocol CLI; `defaultSeeds` is 1 for `train` and 3 for `experiment`. */
export async function main(argv: string[], scriptName: string, defaultSeeds: number): Promise<void> {
  argv = applyDeprecatedAliases(argv, DEPRECATED_ALIASES, scriptName);
  const args = await launcherOptions(protocolOptions(createCli(argv, scriptName), defaultSeeds, defaultRunDir('classify', defaultSeeds === 1 ? 'train' : 'experiment')))
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
  if (args.launcher === 'slurm') {
    const shownArgv = dropOptions(argv, LAUNCHER_OPTIONS);
    const plan = experimentPlan(cfg, argv, slurmResources(args), undefined, `nx run classify:${defaultSeeds === 1 ? 'train' : 'experiment'}${shownArgv.length ? ' -- ' + shownArgv.join(' ') : ''}`);
    submitPlan(plan, { dryRun: args.dryRun });
    if (!args.dryRun) console.log(`status: npx nx run classify:experiment -- --status ${cfg.out}`);
    return;
  }
  let stagesOf = (_seed: number) => cfg.stages;
  let failedTasks: FailedTask[] | undefined;
  let plannedCommand: string | undefined;
  if (args.slurmReport) {
    const r = reportStages(cfg, args.slurmReport);
    plannedCommand = r.command;
    stagesOf = r.stagesOf;
    failedTasks = r.failed;
    for (const f of failedTasks) console.error(`task ${f.task} failed: ${f.detail} (log ${f.log})`);
  }
  const info = await initBackend(args.backend as BackendName);
  console.log(describeBackend(info));
  const badWhileCaching: BadImage[] = [];
  const p = await prepareData(cfg, badWhileCaching);
  const dataDescription = `${p.data.name} (${p.data.root}): ${p.train.size} train / ${p.val.size} val images, ${p.data.classNames.length} classes`;
  console.log(dataDescription);
  const loader = new BatchLoader({ batchSize: cfg.pretrain.batchSize, workers: cfg.workers, prefetch: cfg.prefetch, skipBad: cfg.skipBadImages });
  loader.badImages.push(...badWhileCaching);
  const results: SeedResult[] = [];
  // the report job records the user's command as a local run would (without the launcher's options)
  const command = plannedCommand ?? `nx run classify:${defaultSeeds === 1 ? 'train' : 'experiment'}${argv.length ? ' -- ' + argv.join(' ') : ''}`;
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
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2), 'classify:train', 1).catch((e: Error) => {
    console.error(`classify:train failed: ${e.message}`);
    process.exit(e instanceof PreemptedError ? PREEMPTED_EXIT_CODE : 1);
  });
}
