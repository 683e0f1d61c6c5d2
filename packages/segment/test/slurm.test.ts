/**
 * `segment:train --launcher slurm` without a Slurm: `--dry-run` prints one job whose task is this
 * CLI with the user's options plus `--launcher local --out <the folder the local run writes>
 * --resume` (the default run folder when --out is not given), with the #SBATCH passthrough options,
 * signal forwarding and bounded requeue; nothing is written. The real-Slurm run of the same
 * mechanism (one job, preempted, requeued, same outputs as local) is packages/detect/test/slurm.test.ts.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = ['--conditions=@refconv/source', '--import', 'tsx', 'src/cli/train.ts'];
const cli = (args: string[]) => spawnSync(process.execPath, [...CLI, ...args], { cwd: PKG, encoding: 'utf8', env: process.env });

describe('segment:train --launcher slurm --dry-run', () => {
  it('prints one job running this CLI with the same options into the same folder, with --resume; writes nothing', () => {
    const out = path.join(os.tmpdir(), `refconv-segment-dry-run-never-written-${process.pid}`);
    const user = ['--epochs', '1', '--train-limit', '4', '--crop', '64x64', '--refconv-aspp'];
    const r = cli([...user, '--out', out, '--launcher', 'slurm', '--dry-run', '--partition', 'gpu', '--cpus-per-task', '8', '--max-requeues', '3', '--sbatch', 'qos=low']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('#SBATCH'))).toEqual([
      '#SBATCH --job-name=segment-train',
      `#SBATCH --output=${out}/slurm/logs/segment-train-%j.out`,
      '#SBATCH --open-mode=append',
      '#SBATCH --partition=gpu',
      '#SBATCH --cpus-per-task=8',
      '#SBATCH --signal=B:USR1@120',
      '#SBATCH --requeue',
      '#SBATCH --qos=low',
    ]);
    const cmd = /CMD=\((.*)\) ;;/.exec(r.stdout)![1]!.split(' ');
    expect(cmd).toEqual([process.execPath, ...CLI.slice(0, 3), path.join(PKG, 'src', 'cli', 'train.ts'), ...user, '--launcher', 'local', '--out', out, '--resume']);
    expect(r.stdout).toContain('[ "$RESTARTS" -lt 3 ]');
    expect(r.stdout).toContain('scontrol requeue "$SLURM_JOB_ID"');
    expect(r.stdout).not.toMatch(/backend:/); // nothing trained
    expect(fs.existsSync(out)).toBe(false);
  }, 60_000);

  it('without --out the job writes the default run folder (runs/segment/<format>-<arch>[-refconv]), as a local run does', () => {
    const r = cli(['--arch', 'deeplabv3plus', '--launcher', 'slurm', '--dry-run']);
    expect(r.status, r.stderr).toBe(0);
    const out = path.resolve(PKG, '..', '..', 'runs', 'segment', 'camvid-deeplabv3plus');
    expect(r.stdout).toContain(`--arch deeplabv3plus --launcher local --out ${out} --resume) ;;`);
  }, 60_000);

  it('--status of a folder nothing was submitted to says so (exit 1)', () => {
    const r = cli(['--status', os.tmpdir()]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/segment:train: .*plan\.json does not exist: nothing was submitted with --launcher slurm to this --out/);
  }, 60_000);
});
