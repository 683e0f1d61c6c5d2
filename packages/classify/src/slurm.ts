/**
 * `classify:experiment --launcher slurm`: the experiment as Slurm jobs (engine's slurm.ts does the
 * scripts, submission and status). Jobs, each calling this package's experiment CLI with the
 * user's options plus `--launcher local --stages ... --seeds ... --resume --out <out>`:
 *
 * 1. `pretrain`: one task per seed (`--stages pretrain`), unless `--from` / no pretrain stage;
 * 2. `finetune`: a job array, one task per (arch, arm, seed): `refocus` (+ `fuse`) and `control`,
 *    `afterok` on the pretraining;
 * 3. `report`: `afterany` on both: evaluates what finished and writes the same report.md /
 *    results.json as a local run, listing failed tasks as failed.
 *
 * Every task writes into the same folders as a local run (`<out>/seed-<s>/<stage>/`) and runs with
 * `--resume`, so a requeued task continues from its checkpoint.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Argv } from 'yargs';
import {
  cliCommand,
  dropOptions,
  LAUNCHER_OPTIONS as ENGINE_LAUNCHER_OPTIONS,
  launcherOptions as engineLauncherOptions,
  planStatus,
  readPlan,
  slurmResources,
  userCwd,
  type LauncherArgs,
  type SlurmJob,
  type SlurmPlan,
  type SlurmResources,
  type TaskStatus,
} from '@refconv/engine';
import type { RunConfig, Stage } from './config.js';

/** Options of the launcher itself (engine's plus the report / task markers); they are not passed on to the tasks. */
export const LAUNCHER_OPTIONS = [...ENGINE_LAUNCHER_OPTIONS, 'slurm-report', 'slurm-task'] as const;

export { dropOptions, slurmResources, type LauncherArgs };

/** Adds `--launcher`, the Slurm options (engine's {@link engineLauncherOptions}) and the internal markers of the report job and tasks. */
export function launcherOptions<T>(y: Argv<T>) {
  return engineLauncherOptions(y, 'the experiment')
    .option('slurm-report', { type: 'string', hidden: true, describe: 'internal: the report job (plan folder)' })
    .option('slurm-task', { type: 'boolean', default: false, hidden: true, describe: 'internal: a pretrain / fine-tuning task (writes no report; the report job does)' });
}

/** The experiment CLI as a command: this Node with the TypeScript sources, run in packages/classify. */
export function experimentCommand(): { cwd: string; argv: string[] } {
  return cliCommand(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'), path.join('src', 'cli', 'experiment.ts'));
}

/** Task key of one stage of one seed: `<arch>/seed-<s>/<stage>`. */
export const taskKey = (cfg: Pick<RunConfig, 'arch'>, seed: number, stage: 'pretrain' | 'refocus' | 'control') => `${cfg.arch}/seed-${seed}/${stage}`;

/** The folder of one architecture of a grid (`--archs`): `<out>/<arch>`, what `--arch <arch> --out <out>/<arch>` writes. */
export const archOut = (out: string, arch: string) => path.join(out, arch);

/**
 * The jobs of an experiment; `command` (stored in plan.json) is what the report records as the
 * run's command, as a local run with the same options would. `userArgv` is what the user passed (after deprecated aliases);
 * launcher options, `--stages`, `--seeds`, `--num-seeds`, `--seed`, `--resume` and `--out` are
 * replaced per task.
 *
 * With `archs` (an architecture grid, `--archs a,b`), every (arch, seed) gets a pretraining task
 * and every (arch, arm, seed) a task of the one fine-tuning array, each run as
 * `--arch <arch> --out <out>/<arch>`; the one report job writes every architecture's report and the
 * grid's (`<out>/report.md`). The plan is in `<out>/slurm/`.
 */
export function experimentPlan(cfg: RunConfig, userArgv: string[], resources: SlurmResources, cmd = experimentCommand(), command?: string, archs?: string[]): SlurmPlan {
  const perTask = [...LAUNCHER_OPTIONS, 'stages', 'seeds', 'num-seeds', 'seed', 'resume', 'out', ...(archs ? ['archs', 'arch'] : [])];
  const cfgs = archs ? archs.map((arch) => ({ ...cfg, arch, out: archOut(cfg.out, arch) })) : [cfg];
  const common = dropOptions(userArgv, perTask);
  const task = (c: RunConfig, stages: Stage[], seeds: number[]) => [...cmd.argv, ...common, ...(archs ? ['--arch', c.arch] : []), '--launcher', 'local', '--out', c.out, '--stages', ...stages, '--seeds', ...seeds.map(String), '--resume', '--slurm-task'];
  const has = (s: Stage) => cfg.stages.includes(s);
  const jobs: SlurmJob[] = [];
  if (has('pretrain') && !cfg.baseline) {
    jobs.push({ name: 'pretrain', tasks: cfgs.flatMap((c) => c.seeds.map((s) => ({ key: taskKey(c, s, 'pretrain'), argv: task(c, ['pretrain'], [s]) }))) });
  }
  const arms = (['refocus', 'control'] as const).filter(has);
  if (arms.length) {
    const tasks = cfgs.flatMap((c) => arms.flatMap((arm) => c.seeds.map((s) => ({ key: taskKey(c, s, arm), argv: task(c, arm === 'refocus' && has('fuse') ? ['refocus', 'fuse'] : [arm], [s]) }))));
    jobs.push({ name: 'finetune', tasks, dependsOn: jobs.length ? { type: 'afterok', jobs: ['pretrain'] } : undefined });
  }
  const planDir = path.join(cfg.out, 'slurm');
  const reportArgv = [...dropOptions(userArgv, [...LAUNCHER_OPTIONS, 'resume', 'out', 'stages', 'seeds', 'num-seeds', 'seed']), '--stages', ...cfg.stages, '--seeds', ...cfg.seeds.map(String)];
  jobs.push({
    name: 'report',
    tasks: [{ key: 'report', argv: [...cmd.argv, ...reportArgv, '--launcher', 'local', '--out', cfg.out, '--slurm-report', planDir] }],
    dependsOn: jobs.length ? { type: 'afterany', jobs: jobs.map((j) => j.name) } : undefined,
    requeue: false,
  });
  return { dir: planDir, cwd: cmd.cwd, env: { REFCONV_USER_CWD: userCwd() }, resources, jobs, meta: command ? { command } : undefined };
}

/** A task that did not finish, as the report lists it. */
export interface FailedTask {
  task: string;
  detail: string;
  /** The task's Slurm log file pattern. */
  log?: string;
}

/**
 * For the report job: per seed, the stages whose tasks finished (evaluated and reported), and
 * the tasks that did not (reported as failed). Status comes from the status files only: every
 * other job of the plan has ended when the report job runs.
 */
export function reportStages(cfg: RunConfig, planDir: string): { stagesOf: (seed: number) => Stage[]; failed: FailedTask[]; statuses: TaskStatus[]; command?: string } {
  const plan = readPlan(planDir);
  // this architecture's tasks (a grid's plan holds every architecture's)
  const statuses = planStatus(plan, '').filter((r) => r.job !== 'report' && r.key.startsWith(`${cfg.arch}/`));
  const byKey = new Map(statuses.map((r) => [r.key, r]));
  const failed = statuses.filter((r) => r.state !== 'done').map((r) => ({ task: r.key, detail: r.detail, log: path.join(planDir, 'logs', `${r.job}-${r.slurmId}.out`) }));
  const ok = (seed: number, stage: 'pretrain' | 'refocus' | 'control') => byKey.get(taskKey(cfg, seed, stage))?.state === 'done';
  const stagesOf = (seed: number): Stage[] => {
    const s: Stage[] = [];
    if (cfg.stages.includes('pretrain') && !cfg.baseline && ok(seed, 'pretrain')) s.push('pretrain');
    for (const arm of ['refocus', 'control'] as const) if (cfg.stages.includes(arm) && ok(seed, arm)) s.push(arm);
    if (cfg.stages.includes('fuse') && !cfg.stages.includes('refocus')) s.push('fuse');
    if (cfg.stages.includes('eval')) s.push('eval');
    return s;
  };
  return { stagesOf, failed, statuses, command: plan.meta?.command as string | undefined };
}
