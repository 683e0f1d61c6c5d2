/**
 * `--launcher slurm` without a Slurm: the jobs an experiment becomes (one pretrain task per seed,
 * one array task per (arch, arm, seed) after it, a report job after both), each task calling the
 * experiment CLI with the user's options, and `--dry-run` through the CLI.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config.js';
import { dropOptions, experimentPlan } from '../src/slurm.js';

const cmd = { cwd: '/pkg', argv: ['node', 'experiment.ts'] };

describe('experiment plan', () => {
  it('pretrain per seed, then one array task per (arch, arm, seed) afterok, then the report afterany', () => {
    const cfg = { ...defaultConfig(), out: '/runs/x', seeds: [0, 1] };
    const user = ['--train-limit', '64', '--stages', 'pretrain', 'refocus', 'control', 'fuse', 'eval', '--num-seeds', '2', '--launcher', 'slurm', '--partition', 'p', '--dry-run', '--out', 'rel'];
    const p = experimentPlan(cfg, user, { partition: 'p' }, cmd);
    expect(p.dir).toBe('/runs/x/slurm');
    expect(p.jobs.map((j) => [j.name, j.dependsOn?.type, j.dependsOn?.jobs.join(',')])).toEqual([
      ['pretrain', undefined, undefined],
      ['finetune', 'afterok', 'pretrain'],
      ['report', 'afterany', 'pretrain,finetune'],
    ]);
    const common = ['node', 'experiment.ts', '--train-limit', '64', '--launcher', 'local', '--out', '/runs/x'];
    expect(p.jobs[0]!.tasks).toEqual([
      { key: 'cifar_resnet20/seed-0/pretrain', argv: [...common, '--stages', 'pretrain', '--seeds', '0', '--resume', '--slurm-task'] },
      { key: 'cifar_resnet20/seed-1/pretrain', argv: [...common, '--stages', 'pretrain', '--seeds', '1', '--resume', '--slurm-task'] },
    ]);
    expect(p.jobs[1]!.tasks.map((t) => `${t.key}: ${t.argv.slice(common.length).join(' ')}`)).toEqual([
      'cifar_resnet20/seed-0/refocus: --stages refocus fuse --seeds 0 --resume --slurm-task',
      'cifar_resnet20/seed-1/refocus: --stages refocus fuse --seeds 1 --resume --slurm-task',
      'cifar_resnet20/seed-0/control: --stages control --seeds 0 --resume --slurm-task',
      'cifar_resnet20/seed-1/control: --stages control --seeds 1 --resume --slurm-task',
    ]);
    expect(p.jobs[2]!.requeue).toBe(false);
    expect(p.jobs[2]!.tasks[0]!.argv).toEqual(['node', 'experiment.ts', '--train-limit', '64', '--stages', 'pretrain', 'refocus', 'control', 'fuse', 'eval', '--seeds', '0', '1', '--launcher', 'local', '--out', '/runs/x', '--slurm-report', '/runs/x/slurm']);
  });

  it('with --from there is no pretraining job and the array depends on nothing', () => {
    const cfg = { ...defaultConfig(), out: '/o', seeds: [3], baseline: '/b.safetensors', stages: ['refocus', 'control', 'eval'] as const };
    const p = experimentPlan({ ...cfg, stages: [...cfg.stages] }, ['--from', '/b.safetensors', '--seeds', '3'], {}, cmd);
    expect(p.jobs.map((j) => j.name)).toEqual(['finetune', 'report']);
    expect(p.jobs[0]!.dependsOn).toBeUndefined();
    expect(p.jobs[0]!.tasks.map((t) => t.key)).toEqual(['cifar_resnet20/seed-3/refocus', 'cifar_resnet20/seed-3/control']);
    expect(p.jobs[0]!.tasks[0]!.argv).toContain('/b.safetensors');
    expect(p.jobs[0]!.tasks[0]!.argv.join(' ')).toContain('--stages refocus --seeds 3'); // no fuse stage asked for
  });

  it('an architecture grid: pretraining per (arch, seed), one array task per (arch, arm, seed), each in <out>/<arch>; one report', () => {
    const cfg = { ...defaultConfig(), out: '/runs/g', seeds: [0, 1] };
    const user = ['--archs', 'cifar_resnet20,cifar_resnet56', '--train-limit', '64', '--num-seeds', '2', '--launcher', 'slurm'];
    const p = experimentPlan(cfg, user, {}, cmd, undefined, ['cifar_resnet20', 'cifar_resnet56']);
    expect(p.dir).toBe('/runs/g/slurm');
    expect(p.jobs.map((j) => [j.name, j.tasks.length, j.dependsOn?.type])).toEqual([
      ['pretrain', 4, undefined],
      ['finetune', 8, 'afterok'],
      ['report', 1, 'afterany'],
    ]);
    const pre = (arch: string) => ['node', 'experiment.ts', '--train-limit', '64', '--arch', arch, '--launcher', 'local', '--out', `/runs/g/${arch}`];
    expect(p.jobs[0]!.tasks.map((t) => t.key)).toEqual(['cifar_resnet20/seed-0/pretrain', 'cifar_resnet20/seed-1/pretrain', 'cifar_resnet56/seed-0/pretrain', 'cifar_resnet56/seed-1/pretrain']);
    expect(p.jobs[0]!.tasks[2]!.argv).toEqual([...pre('cifar_resnet56'), '--stages', 'pretrain', '--seeds', '0', '--resume', '--slurm-task']);
    expect(p.jobs[1]!.tasks.map((t) => t.key)).toEqual(
      ['cifar_resnet20', 'cifar_resnet56'].flatMap((a) => ['refocus', 'control'].flatMap((arm) => [0, 1].map((s) => `${a}/seed-${s}/${arm}`))),
    );
    expect(p.jobs[1]!.tasks[7]!.argv).toEqual([...pre('cifar_resnet56'), '--stages', 'control', '--seeds', '1', '--resume', '--slurm-task']);
    // the report job keeps --archs: it writes every architecture's report and the grid's
    expect(p.jobs[2]!.tasks[0]!.argv.join(' ')).toBe('node experiment.ts --archs cifar_resnet20,cifar_resnet56 --train-limit 64 --stages pretrain refocus control fuse eval --seeds 0 1 --launcher local --out /runs/g --slurm-report /runs/g/slurm');
  });

  it('dropOptions removes flags with their values in every spelling and keeps the rest', () => {
    expect(dropOptions(['--a', '1', '--stages', 'x', 'y', '--numSeeds=3', '--no-resume', '--b', '--sbatch', 'qos=low', 'account=l', '--c=2'], ['stages', 'num-seeds', 'resume', 'sbatch'])).toEqual(['--a', '1', '--b', '--c=2']);
  });
});

describe('classify:experiment --launcher slurm --dry-run', () => {
  it('prints the three scripts and the sbatch commands, submits nothing', () => {
    const r = spawnSync(process.execPath, ['--conditions=@refconv/source', '--import', 'tsx', 'src/cli/experiment.ts', '--launcher', 'slurm', '--dry-run', '--num-seeds', '2', '--out', '/tmp/refconv-dry-run-never-written', '--time', '00:05:00', '--gres', 'gpu:1'], {
      cwd: path.resolve(import.meta.dirname, '..'),
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('#SBATCH --array=0-3');
    expect(r.stdout).toContain('#SBATCH --gres=gpu:1');
    expect(r.stdout).toContain('#SBATCH --time=00:05:00');
    expect(r.stdout).toContain('# submit: REPORT_JOB=$(sbatch --parsable "--dependency=afterany:$PRETRAIN_JOB:$FINETUNE_JOB"');
    expect(r.stdout).not.toContain('--dry-run');
  });

  it('--archs: one pretraining array over (arch, seed) and one fine-tuning array over (arch, arm, seed); --arch or --from with --archs is an error', () => {
    const run = (extra: string[]) =>
      spawnSync(process.execPath, ['--conditions=@refconv/source', '--import', 'tsx', 'src/cli/experiment.ts', '--launcher', 'slurm', '--dry-run', '--num-seeds', '2', '--out', '/tmp/refconv-dry-run-never-written', ...extra], {
        cwd: path.resolve(import.meta.dirname, '..'),
        encoding: 'utf8',
      });
    const r = run(['--archs', 'cifar_resnet20,cifar_resnet56']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.match(/#SBATCH --array=\S+/g)).toEqual(['#SBATCH --array=0-3', '#SBATCH --array=0-7']);
    expect(r.stdout).toContain('KEY=cifar_resnet56/seed-1/control;');
    expect(r.stdout).toMatch(/--arch cifar_resnet56 --launcher local --out \/tmp\/refconv-dry-run-never-written\/cifar_resnet56 --stages control --seeds 1 --resume --slurm-task/);
    const both = run(['--archs', 'cifar_resnet20', '--arch', 'cifar_resnet56']);
    expect(both.status).toBe(1);
    expect(both.stderr).toMatch(/give either --arch \(one experiment\) or --archs \(a grid\), not both/);
    const from = run(['--archs', 'a,b', '--from', '/x.safetensors']);
    expect(from.status).toBe(1);
    expect(from.stderr).toMatch(/--from is one baseline checkpoint of one architecture/);
  });
});
