/**
 * `detect:train --launcher slurm`:
 *
 * - without a Slurm: `--dry-run` prints one job whose task is this CLI with the user's options plus
 *   `--launcher local --out <the folder the local run writes> --resume`, the #SBATCH passthrough
 *   options, signal forwarding and requeue; nothing is written;
 * - on a real single-node Slurm (engine's harness; skipped with the reason where it cannot start,
 *   REFCONV_SLURM_TESTS=0 skips on purpose): a tiny BCCD run submitted as a job, signalled
 *   mid-run (`scancel --batch --signal=USR1`, Slurm's time-limit warning), checkpoints, exits 75,
 *   is requeued, resumes and ends with exactly the outputs of the same run done locally (final
 *   weights bit for bit, COCO results and stats, every epoch's losses); `--status` shows it done
 *   after one requeue.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCheckpoint, readJsonl } from '@refconv/engine';
import { describe, expect, it } from 'vitest';
import { slurmUnavailable, waitFor } from '../../engine/test/helpers/slurm-cluster.js';
import { useSlurmCluster } from '../../engine/test/helpers/slurm-suite.js';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = ['--conditions=@refconv/source', '--import', 'tsx', 'src/cli/train.ts'];
// 16 steps per epoch (about 2 s here), 6 epochs: a signal after epoch 1 lands inside training
const OPTS = ['--backbone', 'tiny', '--fpn-channels', '8', '--head-convs', '1', '--min-size', '96', '--max-size', '128', '--batch-size', '2', '--train-limit', '32', '--val-limit', '4', '--warmup-steps', '2', '--epochs', '6', '--visualize', '1'];

const cli = (args: string[]) => spawnSync(process.execPath, [...CLI, ...args], { cwd: PKG, encoding: 'utf8', env: process.env });

describe('detect:train --launcher slurm --dry-run', () => {
  it('prints one job running this CLI with the same options into the same folder, with --resume; writes nothing', () => {
    const out = path.join(os.tmpdir(), `refconv-detect-dry-run-never-written-${process.pid}`);
    const r = cli([...OPTS, '--out', out, '--launcher', 'slurm', '--dry-run', '--time', '00:05:00', '--gres', 'gpu:1', '--mem', '8G', '--sbatch', 'account=lab', '--signal-seconds', '60']);
    expect(r.status, r.stderr).toBe(0);
    const sb = r.stdout.split('\n').filter((l) => l.startsWith('#SBATCH'));
    expect(sb).toEqual([
      '#SBATCH --job-name=detect-train',
      `#SBATCH --output=${out}/slurm/logs/detect-train-%j.out`,
      '#SBATCH --open-mode=append',
      '#SBATCH --gres=gpu:1',
      '#SBATCH --time=00:05:00',
      '#SBATCH --mem=8G',
      '#SBATCH --signal=B:USR1@60',
      '#SBATCH --requeue',
      '#SBATCH --account=lab',
    ]);
    const cmd = /CMD=\((.*)\) ;;/.exec(r.stdout)![1]!.split(' ');
    expect(cmd.slice(0, 5)).toEqual([process.execPath, ...CLI.slice(0, 3), path.join(PKG, 'src', 'cli', 'train.ts')]);
    expect(cmd.slice(5)).toEqual([...OPTS, '--launcher', 'local', '--out', out, '--resume']);
    expect(r.stdout).toContain(`cd ${PKG}`);
    expect(r.stdout).toContain(`# submit: DETECT_TRAIN_JOB=$(sbatch --parsable ${out}/slurm/detect-train.sbatch)`);
    expect(r.stdout).not.toMatch(/backend:|detector:/); // nothing trained
    expect(fs.existsSync(out)).toBe(false);
  }, 60_000);

  it('without --out the job writes the default run folder (runs/detect/<name>), as a local run does', () => {
    const r = cli([...OPTS, '--name', 'slurm-dry-name', '--launcher', 'slurm', '--dry-run']);
    expect(r.status, r.stderr).toBe(0);
    const out = path.resolve(PKG, '..', '..', 'runs', 'detect', 'slurm-dry-name');
    expect(r.stdout).toContain(`--launcher local --out ${out} --resume`);
    expect(fs.existsSync(path.join(out, 'slurm'))).toBe(false);
  }, 60_000);

  it('--status of a folder nothing was submitted to says so', () => {
    const r = cli(['--status', os.tmpdir()]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/plan\.json does not exist: nothing was submitted with --launcher slurm to this --out/);
  }, 60_000);
});

const why = process.env.REFCONV_SLURM_TESTS === '0' ? 'Slurm tests skipped: REFCONV_SLURM_TESTS=0' : process.getuid?.() !== 0 ? 'Slurm tests skipped: starting slurmctld / slurmd needs root' : slurmUnavailable();
if (why) console.warn(why);

const weightsOf = (file: string) => [...loadCheckpoint(file).weights].map(([n, t]) => [n, Array.from(t.data as Float32Array)]);
const epochs = (dir: string) => readJsonl<{ type: string; epoch: number; trainLoss: number; train: Record<string, number> }>(path.join(dir, 'metrics.jsonl')).filter((r) => r.type === 'epoch');

describe.skipIf(why !== undefined)('detect:train --launcher slurm on a real Slurm', () => {
  useSlurmCluster();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'detect-slurm-'));
  const local = path.join(root, 'local');
  const slurm = path.join(root, 'slurm');

  it('a job signalled mid-run is requeued, resumes and writes exactly the local run\'s outputs; --status shows it done', async () => {
    const sub = cli([...OPTS, '--out', slurm, '--launcher', 'slurm', '--time', '00:30:00']);
    expect(sub.status, sub.stderr).toBe(0);
    const id = /submitted detect-train: job (\d+)/.exec(sub.stdout)?.[1];
    expect(id, sub.stdout).toBeDefined();
    const localRun = new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [...CLI, ...OPTS, '--out', local], { cwd: PKG, env: process.env, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      p.stderr.on('data', (d) => (stderr += d));
      p.on('exit', (status) => resolve({ status, stderr }));
    });
    const log = path.join(slurm, 'metrics.jsonl');
    const logged = () => (fs.existsSync(log) ? epochs(slurm).length : 0);
    await waitFor(() => logged() >= 1, 240_000, `epoch 1 of ${log} (job log in ${slurm}/slurm/logs)`, 100);
    expect(logged()).toBeLessThan(6);
    const sig = spawnSync('scancel', ['--batch', '--signal=USR1', id!], { encoding: 'utf8', env: process.env });
    expect(sig.status, sig.stderr).toBe(0);
    const statusFile = path.join(slurm, 'slurm', 'status', 'train.json');
    const state = () => (fs.existsSync(statusFile) ? (JSON.parse(fs.readFileSync(statusFile, 'utf8')) as { state: string }).state : '');
    await waitFor(() => state() === 'done' || state() === 'failed', 300_000, `the job of ${slurm} to end`);
    const loc = await localRun;
    expect(loc.status, loc.stderr).toBe(0);

    const jobLog = fs.readFileSync(path.join(slurm, 'slurm', 'logs', `detect-train-${id}.out`), 'utf8');
    // at a batch inside the epoch, or at its start when the signal came before its first step ended
    expect(jobLog).toMatch(/stopped by SIGUSR1 during epoch [2-6]; (checkpoint written at batch \d+ of epoch [2-6]: )?resume continues from .*last\.safetensors/);
    expect(jobLog).toMatch(/preempted \(exit 75\): requeueing/);
    expect(jobLog).toMatch(/resuming from .*last\.safetensors/);
    expect(JSON.parse(fs.readFileSync(statusFile, 'utf8'))).toMatchObject({ state: 'done', exitCode: 0, restarts: 1 });

    // the same files as the local run (plus the launcher's slurm/ folder), with the same contents
    const files = (d: string) => fs.readdirSync(d, { recursive: true, encoding: 'utf8' }).filter((f) => !f.startsWith('slurm')).sort();
    expect(files(slurm)).toEqual(files(local));
    expect(weightsOf(path.join(slurm, 'final.safetensors'))).toEqual(weightsOf(path.join(local, 'final.safetensors')));
    for (const f of ['test_stats.json', 'test_results.json']) expect(fs.readFileSync(path.join(slurm, f), 'utf8'), f).toBe(fs.readFileSync(path.join(local, f), 'utf8'));
    expect(epochs(slurm).map((e) => [e.epoch, e.trainLoss, e.train])).toEqual(epochs(local).map((e) => [e.epoch, e.trainLoss, e.train]));

    const status = cli(['--status', slurm]);
    expect(status.status, status.stderr).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^detect-train\\s+train\\s+${id}\\s+done\\s+exit 0, 1 requeue\\(s\\)$`, 'm'));
    expect(status.stdout).toMatch(/^1 done$/m);
  }, 600_000);
});
