/**
 * Slurm launcher: turns a plan of jobs (each one command, or a job array of commands) into
 * `sbatch` scripts, submits them with their dependencies, and reports each task's state from
 * `squeue` and the exit-status files the scripts write. Task-agnostic: classify's
 * `--launcher slurm` builds a plan; detect and segment can build theirs the same way.
 *
 * Every script runs its task's command in the background and forwards SIGUSR1 / SIGTERM to it
 * (jobs are submitted with `--signal=B:USR1@<signalSeconds>` and `--requeue`). A trainer that
 * stops on such a signal exits with {@link PREEMPTED_EXIT_CODE} (see `runEpochs`); the script
 * then requeues the task (`scontrol requeue $SLURM_JOB_ID`), at most `maxRequeues` times. Any
 * other non-zero exit is final: the task is recorded as failed and not requeued.
 *
 * Files in `dir` (e.g. `<out>/slurm/`): `<job>.sbatch`, `plan.json` (jobs, tasks, job ids),
 * `logs/<job>-<jobid>_<task>.out`, `status/<task key with / as __>.json`
 * (`{state: 'done'|'failed'|'requeued', exitCode, restarts, jobId}`).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
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
    "trap 'echo \"[slurm] signal: stopping $KEY after its current step\"; kill -USR1 $CHILD 2>/dev/null' USR1 TERM",
    'RC=0',
    'while true; do wait $CHILD; RC=$?; kill -0 $CHILD 2>/dev/null || break; done',
    'write_status() { printf \'{"key":"%s","state":"%s","exitCode":%d,"restarts":%d,"jobId":"%s"}\\n\' "$KEY" "$1" "$RC" "$RESTARTS" "${SLURM_JOB_ID:-}" > "$STATUS.tmp" && mv "$STATUS.tmp" "$STATUS"; }',
  );
  if (requeue) {
    // a preemption exit (or death by the forwarded signal itself) is requeued, a crash is not
    lines.push(
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

/** A task's state. */
export type TaskState = 'pending' | 'running' | 'done' | 'failed' | 'requeued' | 'unknown';

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

/**
 * Each task's state: the status file the script wrote (done / failed / requeued), else its
 * `squeue` state, else `failed` when Slurm no longer knows it (cancelled, dependency never satisfied).
 */
export function planStatus(plan: SubmittedPlan, squeueText?: string): TaskStatus[] {
  if (squeueText === undefined) {
    const ids = Object.values(plan.jobIds);
    try {
      squeueText = execFileSync('squeue', ['-h', '-r', '-o', '%i %T %r', '-j', ids.join(',')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch {
      squeueText = ''; // squeue refuses ids it no longer knows
    }
  }
  const queue = parseSqueue(squeueText);
  const rows: TaskStatus[] = [];
  for (const job of plan.jobs) {
    const id = plan.jobIds[job.name] ?? '?';
    job.tasks.forEach((t, i) => {
      const slurmId = job.tasks.length > 1 ? `${id}_${i}` : id;
      const q = queue.get(slurmId) ?? (job.tasks.length > 1 ? undefined : queue.get(`${id}_0`));
      const sf = statusFile(plan.dir, t.key);
      const st = fs.existsSync(sf) ? (JSON.parse(fs.readFileSync(sf, 'utf8')) as { state: string; exitCode: number; restarts: number }) : undefined;
      let state: TaskState;
      let detail: string;
      if (q && (q.state === 'RUNNING' || q.state === 'COMPLETING')) [state, detail] = ['running', q.state];
      else if (q && q.state === 'PENDING' && q.reason.includes('DependencyNeverSatisfied')) [state, detail] = ['failed', 'dependency never satisfied'];
      else if (q && (q.state === 'PENDING' || q.state === 'REQUEUED' || q.state === 'REQUEUE_HOLD' || q.state === 'CONFIGURING')) [state, detail] = [st?.state === 'requeued' ? 'requeued' : 'pending', `${q.state}${q.reason ? ' ' + q.reason : ''}`];
      else if (st && st.state !== 'requeued') [state, detail] = [st.state as TaskState, `exit ${st.exitCode}${st.restarts ? `, ${st.restarts} requeue(s)` : ''}`];
      else if (q) [state, detail] = ['unknown', q.state];
      else [state, detail] = ['failed', 'not in the queue and no exit status (cancelled, or never ran)'];
      rows.push({ job: job.name, key: t.key, slurmId, state, detail });
    });
  }
  return rows;
}

/** A fixed-width table of {@link planStatus} rows plus a count per state. */
export function formatStatus(rows: TaskStatus[]): string {
  const w = (k: keyof TaskStatus) => Math.max(k.length, ...rows.map((r) => String(r[k]).length));
  const cols: Array<keyof TaskStatus> = ['job', 'key', 'slurmId', 'state', 'detail'];
  const line = (r: Record<string, string>) => cols.map((c) => String(r[c]).padEnd(w(c))).join('  ').trimEnd();
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
  return [line({ job: 'job', key: 'task', slurmId: 'slurm id', state: 'state', detail: 'detail' }), ...rows.map((r) => line(r as unknown as Record<string, string>)), '', [...counts].map(([s, n]) => `${n} ${s}`).join(', ')].join('\n');
}
