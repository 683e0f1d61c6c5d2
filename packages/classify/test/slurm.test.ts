/**
 * `classify:experiment --launcher slurm` on a real single-node Slurm (engine's test harness starts
 * munged, slurmctld and slurmd, installing slurm-wlm + munge with apt when missing; skipped with
 * the reason where that is impossible, e.g. not root; REFCONV_SLURM_TESTS=0 skips on purpose):
 *
 * 1. a tiny Fashion-MNIST experiment (2 arms x 2 seeds) submitted as jobs ends with the same
 *    results.json numbers (every model's top-1 / top-5 / loss, every epoch's train loss) as the
 *    same experiment run locally, and `--status` shows every task done;
 * 2. from that run's baseline, a fine-tuning task signalled mid-run (`scancel --batch --signal=USR1`,
 *    Slurm's time-limit warning) checkpoints, exits 75, is requeued, resumes and ends with weights
 *    bit-identical to the local run's, while a task that crashes is reported failed (report.md,
 *    results.json, --status), not requeued.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint, readJsonl } from '@refconv/engine';
import { slurmUnavailable, waitFor } from '../../engine/test/helpers/slurm-cluster.js';
import { useSlurmCluster } from '../../engine/test/helpers/slurm-suite.js';
import { tmpDir } from './helpers.js';

const why = process.env.REFCONV_SLURM_TESTS === '0' ? 'Slurm tests skipped: REFCONV_SLURM_TESTS=0' : process.getuid?.() !== 0 ? 'Slurm tests skipped: starting slurmctld / slurmd needs root' : slurmUnavailable();
if (why) console.warn(why);

const PKG = path.resolve(import.meta.dirname, '..');
const CLI = ['--conditions=@refconv/source', '--import', 'tsx', 'src/cli/experiment.ts'];
// 48 steps per epoch, so that a signal lands inside an epoch
const OPTS = ['--train-limit', '384', '--val-limit', '100', '--batch-size', '8', '--epochs', '1', '--finetune-epochs', '3', '--latency-runs', '2', '--workers', '0'];

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [...CLI, ...args], { cwd: PKG, encoding: 'utf8', env: process.env });
}

function cliAsync(args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [...CLI, ...args], { cwd: PKG, env: process.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (status) => resolve({ status, stderr }));
  });
}

interface Results {
  command: string;
  results: Array<{ seed: number; models: Record<string, { top1: number; top5: number; loss: number; params: number }>; histories: Record<string, Array<{ trainLoss: number }>>; fusedPredictionMismatches?: number }>;
  failedTasks?: Array<{ task: string; detail: string }>;
}
const readResults = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as Results;
const numbers = (r: Results) =>
  r.results.map((s) => ({
    seed: s.seed,
    models: Object.fromEntries(Object.entries(s.models).map(([k, m]) => [k, [m.top1, m.top5, m.loss, m.params]])),
    histories: Object.fromEntries(Object.entries(s.histories).map(([k, h]) => [k, h.map((e) => e.trainLoss)])),
    mismatches: s.fusedPredictionMismatches,
  }));
const reportDone = (out: string) => fs.existsSync(path.join(out, 'slurm', 'status', 'report.json'));
const weightsOf = (file: string) => [...loadCheckpoint(file).weights].map(([n, t]) => [n, Array.from(t.data as Float32Array)]);

describe.skipIf(why !== undefined)('classify:experiment --launcher slurm on a real Slurm', () => {
  useSlurmCluster();
  const root = tmpDir('classify-slurm-');
  const local = path.join(root, 'local');
  const slurm = path.join(root, 'slurm');

  it('2 arms x 2 seeds as Slurm jobs give the same results.json numbers as the local run; --status shows every task done', async () => {
    const sub = cli([...OPTS, '--num-seeds', '2', '--out', slurm, '--launcher', 'slurm', '--time', '00:30:00', '--sbatch', 'comment=refconv-test']);
    expect(sub.status, sub.stderr).toBe(0);
    expect(sub.stdout).toMatch(/submitted pretrain: job \d+ \(array of 2\)\nsubmitted finetune: job \d+ \(array of 4\)\nsubmitted report: job \d+/);
    expect(fs.readFileSync(path.join(slurm, 'slurm', 'finetune.sbatch'), 'utf8')).toContain('#SBATCH --comment=refconv-test');
    const loc = await cliAsync([...OPTS, '--num-seeds', '2', '--out', local]);
    expect(loc.status, loc.stderr).toBe(0);
    await waitFor(() => reportDone(slurm), 300_000, `the report job of ${slurm} (logs in ${slurm}/slurm/logs)`);
    const status = cli(['--status', slurm]);
    expect(status.stdout).toMatch(/^7 done$/m);
    const [a, b] = [readResults(local), readResults(slurm)];
    expect(b.failedTasks).toBeUndefined();
    expect(numbers(b)).toEqual(numbers(a));
    expect(Object.keys(b.results[0]!.models).sort()).toEqual(['baseline', 'control', 'fused', 'refconv']);
    expect(b.command).toBe(a.command.replace(local, slurm));
    // no task wrote a report of its own part
    expect(fs.readFileSync(path.join(slurm, 'report.md'), 'utf8')).toContain('| 1 |');
  }, 420_000);

  it('a task signalled mid-run is requeued and ends bit-identical to the local run; a crashing task is reported failed', async () => {
    const pre = path.join(root, 'preempt');
    const baseline = path.join(local, 'seed-0', 'pretrain', 'final.safetensors');
    // seed 1's control folder is a file: that task crashes (exit 1) and must not be requeued
    fs.mkdirSync(path.join(pre, 'seed-1'), { recursive: true });
    fs.writeFileSync(path.join(pre, 'seed-1', 'control'), 'not a folder');
    const sub = cli([...OPTS, '--from', baseline, '--stages', 'refocus', 'control', 'fuse', 'eval', '--seeds', '0', '1', '--out', pre, '--launcher', 'slurm']);
    expect(sub.status, sub.stderr).toBe(0);
    const plan = JSON.parse(fs.readFileSync(path.join(pre, 'slurm', 'plan.json'), 'utf8')) as { jobIds: Record<string, string>; jobs: Array<{ name: string; tasks: Array<{ key: string }> }> };
    const index = plan.jobs.find((j) => j.name === 'finetune')!.tasks.findIndex((t) => t.key.endsWith('seed-0/control'));
    const target = `${plan.jobIds.finetune}_${index}`;
    const log = path.join(pre, 'seed-0', 'control', 'metrics.jsonl');
    const epochsLogged = () => (fs.existsSync(log) ? readJsonl<{ type: string }>(log).filter((r) => r.type === 'epoch').length : 0);
    await waitFor(() => epochsLogged() >= 1, 300_000, `epoch 1 of ${log}`, 100);
    expect(epochsLogged()).toBeLessThan(3);
    const sig = spawnSync('scancel', ['--batch', '--signal=USR1', target], { encoding: 'utf8', env: process.env });
    expect(sig.status, sig.stderr).toBe(0);
    await waitFor(() => reportDone(pre), 400_000, `the report job of ${pre}`);

    const taskLog = fs.readFileSync(path.join(pre, 'slurm', 'logs', `finetune-${target}.out`), 'utf8');
    expect(taskLog).toMatch(/\[control\] SIGUSR1: stopping after the current step/);
    expect(taskLog).toMatch(/stopped by SIGUSR1 during epoch [23]; checkpoint written at batch \d+ of epoch [23]: resume continues from .*last\.safetensors/);
    expect(taskLog).toMatch(/preempted \(exit 75\): requeueing/);
    expect(taskLog).toMatch(/\[control\] resuming from .*: epoch [12]\/3 \+ \d+ batch\(es\)/); // inside the epoch it was stopped in
    const st = JSON.parse(fs.readFileSync(path.join(pre, 'slurm', 'status', 'cifar_resnet20__seed-0__control.json'), 'utf8'));
    expect(st).toMatchObject({ state: 'done', exitCode: 0, restarts: 1 });
    // the same baseline, seed and schedule as the local run's seed-0 control: bit-identical
    expect(weightsOf(path.join(pre, 'seed-0', 'control', 'final.safetensors'))).toEqual(weightsOf(path.join(local, 'seed-0', 'control', 'final.safetensors')));
    const r = readResults(pre);
    expect(r.results[0]!.models.control!.top1).toBe(readResults(local).results[0]!.models.control!.top1);

    // the crash: failed, once
    const crash = JSON.parse(fs.readFileSync(path.join(pre, 'slurm', 'status', 'cifar_resnet20__seed-1__control.json'), 'utf8'));
    expect(crash).toMatchObject({ state: 'failed', exitCode: 1, restarts: 0 });
    expect(r.failedTasks?.map((f) => f.task)).toEqual(['cifar_resnet20/seed-1/control']);
    const md = fs.readFileSync(path.join(pre, 'report.md'), 'utf8');
    expect(md).toContain('**Failed tasks**');
    expect(md).toMatch(/`cifar_resnet20\/seed-1\/control`: exit 1/);
    expect(md).toMatch(/\| 1 \| [^\n]*\| failed \|/);
    expect(r.results[1]!.models.refconv).toBeDefined();
    const status = cli(['--status', pre]).stdout;
    expect(status).toMatch(/seed-1\/control\s+\S+\s+failed\s+exit 1/);
    expect(status).toMatch(/seed-0\/control\s+\S+\s+done\s+exit 0, 1 requeue\(s\)/);
  }, 600_000);
});
