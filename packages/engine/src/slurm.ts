/**
 * Slurm launcher: turns a plan of jobs (each one command, or a job array of commands) into
 * `sbatch` scripts, submits them with their dependencies, and reports each task's state from
 * `squeue` and the exit-status files the scripts write. Task-agnostic: classify's
 * `--launcher slurm` builds a plan; detect and segment can build theirs the same way.
 *
 * Every script runs its task's command in the background and forwards SIGUSR1 / SIGTERM to it
 * (jobs are submitted with `--signal=B:USR1@<signalSeconds>` and `--requeue`). A trainer that
 * stops on such a signal exits with {@link PREEMPTED_EXIT_CODE} (see `runEpochs`) after writing
 * its checkpoint. After SIGUSR1 (the time-limit warning) the script requeues the task
 * (`scontrol requeue $SLURM_JOB_ID`), at most `maxRequeues` times. After SIGTERM it does not:
 * Slurm requeues a preempted `--requeue` job itself, and a job cancelled with `scancel` stays
 * cancelled. Any other non-zero exit is final: the task is recorded as failed and not requeued.
 *
 * Files in `dir` (e.g. `<out>/slurm/`): `<job>.sbatch`, `plan.json` (jobs, tasks, job ids),
 * `logs/<job>-<jobid>_<task>.out`, `status/<task key with / as __>.json`
 * (`{state: 'done'|'failed'|'requeued'|'stopped', exitCode, restarts, jobId}`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Argv } from 'yargs';
import { userCwd } from './cli.js';
import { writeFileAtomic } from './fs-atomic.js';

/** Exit code of a trainer stopped by SIGTERM / SIGUSR1 after writing its checkpoint (EX_TEMPFAIL). */
export const PREEMPTED_EXIT_CODE = 75;

/** Resources and scheduling options passed through to every job (`#SBATCH` lines). */
export interface SlurmResources {
  partition?: string;
  /** e.g. `gpu:1`. */
  gres?: string;
  /** Time limit, e.g. `02:00:00`. */
  time?: string;
  cpusPerTask?: number;
  /** e.g. `16G`. */
  mem?: string;
  /** Extra `#SBATCH` lines, without the prefix (e.g. `--account=lab`, `--qos=low`). */
  extra?: string[];
  /** Seconds before the time limit at which Slurm sends SIGUSR1 to the batch script (default 120). */
  signalSeconds?: number;
  /** Requeues after a preemption exit before the task counts as failed (default 20). */
  maxRequeues?: number;
}

/** One task: a command (argv, run in `cwd`) identified by a stable key (e.g. `seed-0/refocus`). */
export interface SlurmTask {
  key: string;
  argv: string[];
}

/** One `sbatch` submission: a single task, or a job array when it has several tasks. */
export interface SlurmJob {
  /** Name in the plan, the script file and `--job-name` (letters, digits, `-`, `_`). */
  name: string;
  tasks: SlurmTask[];
  /** Jobs (by name) this one waits for: `afterok` (all must succeed) or `afterany` (all must end). */
  dependsOn?: { type: 'afterok' | 'afterany'; jobs: string[] };
  /** Trainers may be preempted and requeued (default true); a report job sets false. */
  requeue?: boolean;
}

/** A whole submission: jobs in dependency order. */
export interface SlurmPlan {
  /** Folder for scripts, plan.json, logs and status files. */
  dir: string;
  /** Working directory of every command. */
  cwd: string;
  /** Environment variables exported by every script. */
  env?: Record<string, string>;
  resources: SlurmResources;
  jobs: SlurmJob[];
  /** Anything the caller wants to find again in plan.json (e.g. the user's command). */
  meta?: Record<string, unknown>;
}

/** plan.json: the plan plus the job id of each submitted job. */
export interface SubmittedPlan extends SlurmPlan {
  jobIds: Record<string, string>;
  submittedAt: string;
}

const NAME_RE = /^[A-Za-z0-9_-]+$/;

/** Quotes one word for bash. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** File name of a task's status file (its key with `/` as `__`). */
export function statusFile(dir: string, key: string): string {
  return path.join(dir, 'status', `${key.replace(/[/\\]/g, '__')}.json`);
}

/** The `#SBATCH` lines and body of one job's script (dependencies are given at submission). */
export function sbatchScript(plan: SlurmPlan, job: SlurmJob): string {
  if (!NAME_RE.test(job.name)) throw new Error(`slurm job name '${job.name}' may only hold letters, digits, - and _`);
  if (job.tasks.length === 0) throw new Error(`slurm job '${job.name}' has no tasks`);
  const r = plan.resources;
  const signalSeconds = r.signalSeconds ?? 120;
  const maxRequeues = r.maxRequeues ?? 20;
  const requeue = job.requeue ?? true;
  const array = job.tasks.length > 1;
  const logs = path.join(plan.dir, 'logs');
  const lines = ['#!/bin/bash', `#SBATCH --job-name=${job.name}`, `#SBATCH --output=${logs}/${job.name}-${array ? '%A_%a' : '%j'}.out`, '#SBATCH --open-mode=append'];
  if (array) lines.push(`#SBATCH --array=0-${job.tasks.length - 1}`);
  if (r.partition) lines.push(`#SBATCH --partition=${r.partition}`);
  if (r.gres) lines.push(`#SBATCH --gres=${r.gres}`);
  if (r.time) lines.push(`#SBATCH --time=${r.time}`);
  if (r.cpusPerTask !== undefined) lines.push(`#SBATCH --cpus-per-task=${r.cpusPerTask}`);
  if (r.mem) lines.push(`#SBATCH --mem=${r.mem}`);
  if (requeue) lines.push(`#SBATCH --signal=B:USR1@${signalSeconds}`, '#SBATCH --requeue');
  else lines.push('#SBATCH --no-requeue');
  for (const e of r.extra ?? []) lines.push(`#SBATCH ${e.startsWith('-') ? e : '--' + e}`);
  lines.push('', 'set -u', `cd ${shellQuote(plan.cwd)}`);
  for (const [k, v] of Object.entries(plan.env ?? {})) lines.push(`export ${k}=${shellQuote(v)}`);
  lines.push('case "${SLURM_ARRAY_TASK_ID:-0}" in');
  job.tasks.forEach((t, i) => {
    lines.push(`  ${i}) KEY=${shellQuote(t.key)}; STATUS=${shellQuote(statusFile(plan.dir, t.key))}; CMD=(${t.argv.map(shellQuote).join(' ')}) ;;`);
  });
  lines.push(`  *) echo "no task \${SLURM_ARRAY_TASK_ID} in ${job.name}" >&2; exit 2 ;;`, 'esac');
  lines.push(
    'mkdir -p "$(dirname "$STATUS")"',
    'RESTARTS=${SLURM_RESTART_COUNT:-0}',
    'echo "[slurm] task $KEY job ${SLURM_JOB_ID:-?} restart $RESTARTS on $(hostname): ${CMD[*]}"',
    // the trainer runs in the background so that this shell can forward Slurm's signals to it
    '"${CMD[@]}" &',
    'CHILD=$!',
    // USR1 (the time-limit warning, or `scancel --signal=USR1`): the task requeues itself below;
    // TERM (scancel, or preemption, which Slurm requeues itself for --requeue jobs): it only stops
    'SIG=',
    "trap 'SIG=USR1; echo \"[slurm] SIGUSR1: stopping $KEY after its current step\"; kill -USR1 $CHILD 2>/dev/null' USR1",
    "trap 'SIG=TERM; echo \"[slurm] SIGTERM: stopping $KEY after its current step\"; kill -USR1 $CHILD 2>/dev/null' TERM",
    'RC=0',
    'while true; do wait $CHILD; RC=$?; kill -0 $CHILD 2>/dev/null || break; done',
    'write_status() { printf \'{"key":"%s","state":"%s","exitCode":%d,"restarts":%d,"jobId":"%s"}\\n\' "$KEY" "$1" "$RC" "$RESTARTS" "${SLURM_JOB_ID:-}" > "$STATUS.tmp" && mv "$STATUS.tmp" "$STATUS"; }',
  );
  if (requeue) {
    // a preemption exit (or death by the forwarded signal itself) is requeued, a crash is not
    lines.push(
      `if [ "$SIG" = TERM ] && { [ $RC -eq ${PREEMPTED_EXIT_CODE} ] || [ $RC -eq 138 ] || [ $RC -eq 143 ]; }; then`,
      '  write_status stopped',
      '  echo "[slurm] $KEY stopped by SIGTERM (exit $RC), checkpoint written: Slurm requeues a preempted job itself; a cancelled one stays cancelled"',
      '  exit $RC',
      'fi',
      `if { [ $RC -eq ${PREEMPTED_EXIT_CODE} ] || [ $RC -eq 138 ] || [ $RC -eq 143 ]; } && [ "$RESTARTS" -lt ${maxRequeues} ]; then`,
      '  write_status requeued',
      '  echo "[slurm] $KEY preempted (exit $RC): requeueing"',
      '  scontrol requeue "$SLURM_JOB_ID"',
      '  exit 0',
      'fi',
    );
  }
  lines.push('if [ $RC -eq 0 ]; then write_status done; else write_status failed; fi', 'exit $RC', '');
  return lines.join('\n');
}

/** The `sbatch` argv of one job (`--parsable`, dependencies resolved through `jobIds`). */
export function sbatchArgs(plan: SlurmPlan, job: SlurmJob, jobIds: Record<string, string>): string[] {
  const args = ['--parsable'];
  if (job.dependsOn && job.dependsOn.jobs.length) {
    const ids = job.dependsOn.jobs.map((n) => {
      const id = jobIds[n];
      if (!id) throw new Error(`slurm job '${job.name}' depends on '${n}', which is not submitted before it`);
      return id;
    });
    args.push(`--dependency=${job.dependsOn.type}:${ids.join(':')}`, '--kill-on-invalid-dep=yes');
  }
  args.push(path.join(plan.dir, `${job.name}.sbatch`));
  return args;
}

/** Writes every script; with `dryRun`, prints them and the sbatch commands instead of submitting. */
export function submitPlan(plan: SlurmPlan, o: { dryRun?: boolean; print?: (s: string) => void; sbatch?: string } = {}): SubmittedPlan {
  const print = o.print ?? ((s: string) => void process.stdout.write(s + '\n'));
  const names = new Set<string>();
  for (const j of plan.jobs) {
    if (names.has(j.name)) throw new Error(`slurm plan: job name '${j.name}' is used twice`);
    names.add(j.name);
  }
  const jobIds: Record<string, string> = {};
  if (!o.dryRun) fs.mkdirSync(path.join(plan.dir, 'logs'), { recursive: true });
  for (const job of plan.jobs) {
    const script = sbatchScript(plan, job);
    const file = path.join(plan.dir, `${job.name}.sbatch`);
    if (o.dryRun) {
      jobIds[job.name] = `$${job.name.toUpperCase().replace(/-/g, '_')}_JOB`;
      print(`# ---- ${file} ----\n${script}`);
      print(`# submit: ${jobIds[job.name].slice(1)}=$(sbatch ${sbatchArgs(plan, job, jobIds).map((a) => (a.includes('$') ? `"${a}"` : shellQuote(a))).join(' ')})\n`);
      continue;
    }
    writeFileAtomic(file, script);
    fs.chmodSync(file, 0o755);
    let out: string;
    try {
      out = execFileSync(o.sbatch ?? 'sbatch', sbatchArgs(plan, job, jobIds), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`sbatch ${file} failed: ${(err.stderr || err.message).trim()}`);
    }
    const id = out.trim().split(';')[0]!;
    if (!/^\d+$/.test(id)) throw new Error(`sbatch ${file} printed '${out.trim()}', expected a job id`);
    jobIds[job.name] = id;
    print(`submitted ${job.name}: job ${id}${job.tasks.length > 1 ? ` (array of ${job.tasks.length})` : ''}`);
  }
  const submitted: SubmittedPlan = { ...plan, jobIds, submittedAt: new Date().toISOString() };
  if (!o.dryRun) writeFileAtomic(path.join(plan.dir, 'plan.json'), JSON.stringify(submitted, null, 1));
  return submitted;
}

/** Reads `plan.json` of a submitted plan. */
export function readPlan(dir: string): SubmittedPlan {
  const file = path.join(dir, 'plan.json');
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist: nothing was submitted with --launcher slurm to this --out`);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as SubmittedPlan;
}

/**
 * A task's state as `--status` shows it: waiting in the queue (also after a preemption requeue),
 * running, finished with exit 0, or ended otherwise (non-zero exit, cancelled, timed out, its
 * dependency failed); `unknown` only for a queue state this module does not know.
 */
export type TaskState = 'pending' | 'running' | 'done' | 'failed' | 'unknown';

/** One row of {@link planStatus}. */
export interface TaskStatus {
  job: string;
  key: string;
  /** `<jobid>` or `<jobid>_<index>`. */
  slurmId: string;
  state: TaskState;
  /** The Slurm state or the exit code that decided `state`. */
  detail: string;
}

/** Parses `squeue -h -o '%i %T %r'` lines into `id -> "STATE reason"` (array ranges expanded). */
export function parseSqueue(text: string): Map<string, { state: string; reason: string }> {
  const m = new Map<string, { state: string; reason: string }>();
  for (const line of text.split('\n')) {
    const [id, state, ...reason] = line.trim().split(/\s+/);
    if (!id || !state) continue;
    const range = /^(\d+)_\[(.+)\]$/.exec(id);
    if (!range) {
      m.set(id, { state, reason: reason.join(' ') });
      continue;
    }
    for (const part of range[2]!.replace(/%\d+$/, '').split(',')) {
      const [a, b] = part.split('-').map(Number);
      for (let i = a!; i <= (b ?? a!); i++) m.set(`${range[1]}_${i}`, { state, reason: reason.join(' ') });
    }
  }
  return m;
}

/** One job's record in the accounting (`sacct`). */
export interface SacctRecord {
  /** e.g. `COMPLETED`, `FAILED`, `CANCELLED by 0`, `TIMEOUT`, `OUT_OF_MEMORY`, `NODE_FAIL`. */
  state: string;
  /** `<code>:<signal>`. */
  exitCode: string;
}

/**
 * Parses `sacct -n -P -X -o JobID,State,ExitCode` lines (`12_3|TIMEOUT|0:0`) into `id -> record`;
 * array ranges of tasks that never started (`12_[4-5]|CANCELLED by 0|0:0`) are expanded, and for a
 * job listed more than once (requeued) the last line wins.
 */
export function parseSacct(text: string): Map<string, SacctRecord> {
  const m = new Map<string, SacctRecord>();
  for (const line of text.split('\n')) {
    const [id, state, exitCode] = line.trim().split('|');
    if (!id || !state || !/^\d/.test(id)) continue;
    const rec = { state: state.trim(), exitCode: (exitCode ?? '').trim() };
    const range = /^(\d+)_\[(.+)\]$/.exec(id);
    if (!range) {
      m.set(id, rec);
      continue;
    }
    for (const part of range[2]!.replace(/%\d+$/, '').split(',')) {
      const [a, b] = part.split('-').map(Number);
      for (let i = a!; i <= (b ?? a!); i++) m.set(`${range[1]}_${i}`, rec);
    }
  }
  return m;
}

/**
 * The accounting records of `ids` from `sacct`, or `undefined` when there are none to be had
 * (no sacct, or accounting disabled: `Slurm accounting storage is disabled`). Without an accounting
 * database the cluster's job-completion log is read instead (`sacct --completion`, needs
 * `JobCompType=jobcomp/filetxt`), which knows single jobs and array tasks by their own job ids.
 */
export function querySacct(ids: string[]): string | undefined {
  if (ids.length === 0) return undefined;
  for (const extra of [['-X'], ['--completion']]) {
    const r = spawnSync('sacct', ['-n', '-P', ...extra, '-o', 'JobID,State,ExitCode', '-j', ids.join(',')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (r.status === 0 && !r.error && r.stdout.trim() && !/accounting storage is disabled/i.test(r.stdout)) return r.stdout;
  }
  return undefined;
}

const QUEUED = new Set(['PENDING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'CONFIGURING', 'RESV_DEL_HOLD', 'SUSPENDED', 'STOPPED']);

/**
 * Each task's state, from (in this order) `squeue` (pending / running; a pending task whose
 * dependency can never be satisfied is failed), the status file its script wrote (done / failed;
 * `requeued` while it waits again), and the accounting (`sacct`, when the cluster has one: a task
 * that left the queue without a status file, e.g. cancelled, timed out, out of memory, node
 * failure). A task Slurm no longer knows at all is failed.
 *
 * `squeueText` / `sacctText` replace the calls to `squeue` / `sacct` (tests, the report job).
 */
export function planStatus(plan: SubmittedPlan, squeueText?: string, sacctText?: string): TaskStatus[] {
  const ids = Object.values(plan.jobIds);
  if (squeueText === undefined) {
    try {
      squeueText = execFileSync('squeue', ['-h', '-r', '-o', '%i %T %r', '-j', ids.join(',')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch {
      squeueText = ''; // squeue refuses ids it no longer knows
    }
  }
  const queue = parseSqueue(squeueText);
  const rows: TaskStatus[] = [];
  let sacct: Map<string, SacctRecord> | undefined;
  const accounting = (slurmId: string, ownJobId?: string): SacctRecord | undefined => {
    if (!sacct) {
      // the array tasks' own job ids (from their status files) let the completion log be matched too
      const own = plan.jobs.flatMap((j) => j.tasks.map((t) => readStatus(plan.dir, t.key)?.jobId)).filter((x): x is string => !!x);
      sacct = parseSacct(sacctText ?? querySacct([...new Set([...ids, ...own])]) ?? '');
    }
    return sacct.get(slurmId) ?? (ownJobId ? sacct.get(ownJobId) : undefined);
  };
  for (const job of plan.jobs) {
    const id = plan.jobIds[job.name] ?? '?';
    job.tasks.forEach((t, i) => {
      const slurmId = job.tasks.length > 1 ? `${id}_${i}` : id;
      const q = queue.get(slurmId) ?? (job.tasks.length > 1 ? undefined : queue.get(`${id}_0`));
      const st = readStatus(plan.dir, t.key);
      const restarts = st?.restarts ? `, ${st.restarts} requeue(s)` : '';
      // stopped by a signal after writing its checkpoint: waiting to run again, or (gone from the queue) cancelled
      const interrupted = st?.state === 'requeued' || st?.state === 'stopped';
      let state: TaskState;
      let detail: string;
      if (q && (q.state === 'RUNNING' || q.state === 'COMPLETING')) [state, detail] = ['running', `${q.state}${restarts}`];
      else if (q && q.state === 'PENDING' && q.reason.includes('DependencyNeverSatisfied')) [state, detail] = ['failed', 'dependency never satisfied'];
      else if (q && QUEUED.has(q.state)) [state, detail] = ['pending', `${interrupted ? `requeued after ${st.state === 'stopped' ? 'SIGTERM' : 'preemption'} (exit ${st.exitCode})${restarts}; ` : ''}${q.state}${q.reason ? ' ' + q.reason : ''}`];
      else if (st && !interrupted) [state, detail] = [st.state === 'done' ? 'done' : 'failed', `exit ${st.exitCode}${restarts}`];
      else if (q) [state, detail] = ['unknown', q.state];
      else {
        const acct = accounting(slurmId, st?.jobId);
        if (acct && acct.state === 'COMPLETED' && !st) [state, detail] = ['done', `sacct: COMPLETED ${acct.exitCode}`];
        else if (acct) [state, detail] = ['failed', `sacct: ${acct.state}${acct.exitCode && acct.exitCode !== '0:0' ? ` (exit ${acct.exitCode})` : ''}${st ? `, after ${st.state} with exit ${st.exitCode}` : ''}`];
        else [state, detail] = ['failed', st ? `${st.state === 'stopped' ? 'stopped by SIGTERM' : 'requeued'} (exit ${st.exitCode}) and no longer in the queue: cancelled` : 'not in the queue and no exit status (cancelled, or never ran)'];
      }
      rows.push({ job: job.name, key: t.key, slurmId, state, detail });
    });
  }
  return rows;
}

/** The status file a task's script wrote, if any. */
function readStatus(dir: string, key: string): { state: string; exitCode: number; restarts: number; jobId?: string } | undefined {
  const sf = statusFile(dir, key);
  if (!fs.existsSync(sf)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(sf, 'utf8'));
  } catch {
    return undefined; // being rewritten (the script writes it with mv, so this is short-lived)
  }
}

/** A fixed-width table of {@link planStatus} rows plus a count per state. */
export function formatStatus(rows: TaskStatus[]): string {
  const header: Record<keyof TaskStatus, string> = { job: 'job', key: 'task', slurmId: 'slurm id', state: 'state', detail: 'detail' };
  const cols: Array<keyof TaskStatus> = ['job', 'key', 'slurmId', 'state', 'detail'];
  const w = (k: keyof TaskStatus) => Math.max(header[k].length, ...rows.map((r) => String(r[k]).length));
  const line = (r: Record<string, string>) => cols.map((c) => String(r[c]).padEnd(w(c))).join('  ').trimEnd();
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
  return [line(header), ...rows.map((r) => line(r as unknown as Record<string, string>)), '', [...counts].map(([s, n]) => `${n} ${s}`).join(', ')].join('\n');
}

// ---------------------------------------------------------------------------------------------
// The launcher's command-line side, shared by the pipelines' CLIs

/** Options of the launcher itself (see {@link launcherOptions}); they are not passed on to the tasks. */
export const LAUNCHER_OPTIONS = ['launcher', 'partition', 'gres', 'time', 'cpus-per-task', 'mem', 'sbatch', 'dry-run', 'status', 'signal-seconds', 'max-requeues'] as const;

/**
 * Adds `--launcher local|slurm` and the Slurm options (`--partition --gres --time --cpus-per-task
 * --mem --sbatch --signal-seconds --max-requeues --dry-run --status`) to a CLI's parser, under the
 * help heading `Launcher:`. `--status` is resolved against the user's folder ({@link userCwd}).
 */
export function launcherOptions<T>(y: Argv<T>, what = 'the run') {
  return y
    .option('launcher', { choices: ['local', 'slurm'] as const, default: 'local' as const, group: 'Launcher:', describe: `run here, or submit ${what} as Slurm jobs (sbatch)` })
    .option('partition', { type: 'string', group: 'Launcher:', describe: 'slurm: #SBATCH --partition' })
    .option('gres', { type: 'string', group: 'Launcher:', describe: 'slurm: #SBATCH --gres (e.g. gpu:1)' })
    .option('time', { type: 'string', group: 'Launcher:', describe: 'slurm: #SBATCH --time (e.g. 02:00:00)' })
    .option('cpus-per-task', { type: 'number', group: 'Launcher:', describe: 'slurm: #SBATCH --cpus-per-task' })
    .option('mem', { type: 'string', group: 'Launcher:', describe: 'slurm: #SBATCH --mem (e.g. 16G)' })
    .option('sbatch', { type: 'string', array: true, group: 'Launcher:', describe: "slurm: extra #SBATCH lines, leading '--' optional (e.g. --sbatch account=lab qos=low)" })
    .option('signal-seconds', { type: 'number', default: 120, group: 'Launcher:', describe: 'slurm: SIGUSR1 this many seconds before the time limit (the task checkpoints and is requeued)' })
    .option('max-requeues', { type: 'number', default: 20, group: 'Launcher:', describe: 'slurm: requeues after preemption before a task counts as failed' })
    .option('dry-run', { type: 'boolean', default: false, group: 'Launcher:', describe: 'slurm: print the scripts and sbatch commands, submit nothing' })
    .option('status', { type: 'string', group: 'Launcher:', describe: `slurm: print the state of every task submitted to this --out folder and exit` })
    .middleware((a: Record<string, unknown>) => {
      if (typeof a.status === 'string') a.status = path.resolve(userCwd(), a.status);
    });
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

/** Parsed launcher flags (what {@link launcherOptions} adds). */
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

/** `--partition ...` etc. as {@link SlurmResources}; invalid numbers are an error naming the flag. */
export function slurmResources(a: LauncherArgs): SlurmResources {
  if (!(Number.isInteger(a.maxRequeues) && a.maxRequeues >= 0)) throw new Error(`--max-requeues must be an integer >= 0, got ${a.maxRequeues}`);
  if (!(Number.isInteger(a.signalSeconds) && a.signalSeconds > 0)) throw new Error(`--signal-seconds must be a positive integer, got ${a.signalSeconds}`);
  if (a.cpusPerTask !== undefined && !(Number.isInteger(a.cpusPerTask) && a.cpusPerTask > 0)) throw new Error(`--cpus-per-task must be a positive integer, got ${a.cpusPerTask}`);
  return { partition: a.partition, gres: a.gres, time: a.time, cpusPerTask: a.cpusPerTask, mem: a.mem, extra: a.sbatch, signalSeconds: a.signalSeconds, maxRequeues: a.maxRequeues };
}

/**
 * A package's CLI script as a task command: this Node with the TypeScript sources
 * (`node --conditions=@refconv/source --import tsx <pkgDir>/<script>`), run in `pkgDir` (as nx does).
 */
export function cliCommand(pkgDir: string, script: string): { cwd: string; argv: string[] } {
  return { cwd: pkgDir, argv: [process.execPath, '--conditions=@refconv/source', '--import', 'tsx', path.join(pkgDir, script)] };
}

/** What {@link singleRunPlan} needs. */
export interface SingleRunOptions {
  /** The run's output folder (what the local run writes); the plan goes into `<out>/slurm/`. */
  out: string;
  /** The CLI as a command ({@link cliCommand}). */
  command: { cwd: string; argv: string[] };
  /** The user's arguments (after deprecated aliases). */
  userArgv: string[];
  resources: SlurmResources;
  /** Task key shown by `--status` (default `train`). */
  key?: string;
  /** Job name (default `train`). */
  jobName?: string;
  /** The command a local run would record (kept in plan.json). */
  shownCommand?: string;
}

/**
 * One training run as one Slurm job: the same CLI with the user's options minus the launcher's,
 * plus `--launcher local --out <out> --resume`, so the job writes exactly the folder the local run
 * writes and a requeued job continues from its checkpoint.
 */
export function singleRunPlan(o: SingleRunOptions): SlurmPlan {
  const argv = [...o.command.argv, ...dropOptions(o.userArgv, [...LAUNCHER_OPTIONS, 'out', 'resume']), '--launcher', 'local', '--out', o.out, '--resume'];
  return {
    dir: path.join(o.out, 'slurm'),
    cwd: o.command.cwd,
    env: { REFCONV_USER_CWD: userCwd() },
    resources: o.resources,
    jobs: [{ name: o.jobName ?? 'train', tasks: [{ key: o.key ?? 'train', argv }] }],
    meta: o.shownCommand ? { command: o.shownCommand } : undefined,
  };
}

/** The parsed arguments {@link launchSingleRun} reads. */
export type LaunchArgs = LauncherArgs & { launcher: 'local' | 'slurm'; dryRun: boolean; status?: string };

/**
 * The launcher part of a single-run CLI (detect:train, segment:train): with `--status OUT` prints
 * every task's state; with `--launcher slurm` submits the run ({@link singleRunPlan}, or prints it
 * with `--dry-run`). Returns true when it did either (the CLI then stops), false for a local run.
 * `out` is called only for a submission (the folder the local run would write).
 */
export function launchSingleRun(args: LaunchArgs, o: Omit<SingleRunOptions, 'out' | 'resources'> & { out: () => string; target: string; print?: (s: string) => void }): boolean {
  const print = o.print ?? ((s: string) => void process.stdout.write(s + '\n'));
  if (args.status !== undefined) {
    print(formatStatus(planStatus(readPlan(path.join(args.status, 'slurm')))));
    return true;
  }
  if (args.launcher !== 'slurm') return false;
  const out = o.out();
  const shown = dropOptions(o.userArgv, LAUNCHER_OPTIONS);
  const plan = singleRunPlan({ jobName: o.target.replace(/[^A-Za-z0-9_-]/g, '-'), ...o, out, resources: slurmResources(args), shownCommand: o.shownCommand ?? `nx run ${o.target}${shown.length ? ' -- ' + shown.join(' ') : ''}` });
  submitPlan(plan, { dryRun: args.dryRun, print });
  if (!args.dryRun) print(`outputs: ${out}\nstatus: npx nx run ${o.target} -- --status ${out}`);
  return true;
}
