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
import { planStatus, readPlan, userCwd, type SlurmJob, type SlurmPlan, type SlurmResources, type TaskStatus } from '@refconv/engine';
import type { RunConfig, Stage } from './config.js';

/** Options of the launcher itself; they are not passed on to the tasks. */
export const LAUNCHER_OPTIONS = ['launcher', 'partition', 'gres', 'time', 'cpus-per-task', 'mem', 'sbatch', 'dry-run', 'status', 'slurm-report', 'slurm-task', 'signal-seconds', 'max-requeues'] as const;

/** Adds `--launcher` and the Slurm options to a parser. */
export function launcherOptions<T>(y: Argv<T>) {
  return y
    .option('launcher', { choices: ['local', 'slurm'] as const, default: 'local' as const, group: 'Launcher:', describe: 'run here, or submit the experiment as Slurm jobs (sbatch)' })
    .option('partition', { type: 'string', group: 'Launcher:', describe: 'slurm: #SBATCH --partition' })
    .option('gres', { type: 'string', group: 'Launcher:', describe: 'slurm: #SBATCH --gres (e.g. gpu:1)' })
    .option('time', { type: 'string', group: 'Launcher:', describe: 'slurm: #SBATCH --time (e.g. 02:00:00)' })
    .option('cpus-per-task', { type: 'number', group: 'Launcher:', describe: 'slurm: #SBATCH --cpus-per-task' })
    .option('mem', { type: 'string', group: 'Launcher:', describe: 'slurm: #SBATCH --mem (e.g. 16G)' })
    .option('sbatch', { type: 'string', array: true, group: 'Launcher:', describe: "slurm: extra #SBATCH lines, leading '--' optional (e.g. --sbatch account=lab qos=low)" })
    .option('signal-seconds', { type: 'number', default: 120, group: 'Launcher:', describe: 'slurm: SIGUSR1 this many seconds before the time limit (the task checkpoints and is requeued)' })
    .option('max-requeues', { type: 'number', default: 20, group: 'Launcher:', describe: 'slurm: requeues after preemption before a task counts as failed' })
    .option('dry-run', { type: 'boolean', default: false, group: 'Launcher:', describe: 'slurm: print the scripts and sbatch commands, submit nothing' })
    .option('status', { type: 'string', group: 'Launcher:', describe: 'slurm: print the state of every task of the experiment in this --out folder and exit' })
    .option('slurm-report', { type: 'string', hidden: true, describe: 'internal: the report job (plan folder)' })
    .option('slurm-task', { type: 'boolean', default: false, hidden: true, describe: 'internal: a pretrain / fine-tuning task (writes no report; the report job does)' });
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

/**
 * `argv` without the named options and their values (`--name v`, `--name=v`, `--no-name`,
 * array values up to the next `--option`; camelCase spellings too).
 */
export function dropOptions(argv: string[], names: readonly string[]): string[] {
  const drop = new Set(names);
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const [raw, value] = [a.slice(2).split('=')[0]!, a.includes('=')];
      const name = kebab(raw).replace(/^no-/, '');
      if (drop.has(name) || drop.has(kebab(raw))) {
        if (!value) while (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) i++;
        continue;
      }
    }
    out.push(a);
  }
  return out;
}

/** The experiment CLI as a command: this Node with the TypeScript sources, run in packages/classify. */
export function experimentCommand(): { cwd: string; argv: string[] } {
  const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  return { cwd: pkg, argv: [process.execPath, '--conditions=@refconv/source', '--import', 'tsx', path.join(pkg, 'src', 'cli', 'experiment.ts')] };
}

/** Parsed launcher flags. */
export interface LauncherArgs {
  partition?: string;
  gres?: string;
  time?: string;
  cpusPerTask?: number;
  mem?: string;
  sbatch?: string[];
  signalSeconds: number;
  maxRequeues: number;
}

/** `--partition ...` etc. as engine resources. */
export function slurmResources(a: LauncherArgs): SlurmResources {
  if (!(Number.isInteger(a.maxRequeues) && a.maxRequeues >= 0)) throw new Error(`--max-requeues must be an integer >= 0, got ${a.maxRequeues}`);
  if (!(Number.isInteger(a.signalSeconds) && a.signalSeconds > 0)) throw new Error(`--signal-seconds must be a positive integer, got ${a.signalSeconds}`);
  if (a.cpusPerTask !== undefined && !(Number.isInteger(a.cpusPerTask) && a.cpusPerTask > 0)) throw new Error(`--cpus-per-task must be a positive integer, got ${a.cpusPerTask}`);
  return { partition: a.partition, gres: a.gres, time: a.time, cpusPerTask: a.cpusPerTask, mem: a.mem, extra: a.sbatch, signalSeconds: a.signalSeconds, maxRequeues: a.maxRequeues };
}

/** Task key of one stage of one seed: `<arch>/seed-<s>/<stage>`. */
export const taskKey = (cfg: Pick<RunConfig, 'arch'>, seed: number, stage: 'pretrain' | 'refocus' | 'control') => `${cfg.arch}/seed-${seed}/${stage}`;

/**
 * The jobs of an experiment; `command` (stored in plan.json) is what the report records as the
 * run's command, as a local run with the same options would. `userArgv` is what the user passed (after deprecated aliases);
 * launcher options, `--stages`, `--seeds`, `--num-seeds`, `--seed`, `--resume` and `--out` are
 * replaced per task.
 */
export function experimentPlan(cfg: RunConfig, userArgv: string[], resources: SlurmResources, cmd = experimentCommand(), command?: string): SlurmPlan {
  const base = [...cmd.argv, ...dropOptions(userArgv, [...LAUNCHER_OPTIONS, 'stages', 'seeds', 'num-seeds', 'seed', 'resume', 'out']), '--launcher', 'local', '--out', cfg.out];
  const task = (stages: Stage[], seeds: number[]) => [...base, '--stages', ...stages, '--seeds', ...seeds.map(String), '--resume', '--slurm-task'];
  const has = (s: Stage) => cfg.stages.includes(s);
  const jobs: SlurmJob[] = [];
  if (has('pretrain') && !cfg.baseline) {
    jobs.push({ name: 'pretrain', tasks: cfg.seeds.map((s) => ({ key: taskKey(cfg, s, 'pretrain'), argv: task(['pretrain'], [s]) })) });
  }
  const arms = (['refocus', 'control'] as const).filter(has);
  if (arms.length) {
    const tasks = arms.flatMap((arm) => cfg.seeds.map((s) => ({ key: taskKey(cfg, s, arm), argv: task(arm === 'refocus' && has('fuse') ? ['refocus', 'fuse'] : [arm], [s]) })));
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
  const statuses = planStatus(plan, '').filter((r) => r.job !== 'report');
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
