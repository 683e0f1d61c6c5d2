/**
 * Slurm launcher without a Slurm: the generated scripts (array indices, per-task commands,
 * passthrough #SBATCH options, signal forwarding and requeue rules), dependencies on the sbatch
 * command line, submission through a fake sbatch, and task states from squeue text + status files.
 * The real-Slurm tests are in packages/classify/test/slurm.test.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dropOptions, formatStatus, parseSacct, parseSqueue, planStatus, PREEMPTED_EXIT_CODE, sbatchArgs, sbatchScript, singleRunPlan, statusFile, submitPlan, type SlurmPlan } from '../src/slurm.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'engine-slurm-'));

function plan(dir: string, extra: Partial<SlurmPlan['resources']> = {}): SlurmPlan {
  return {
    dir,
    cwd: '/repo/pkg dir',
    env: { REFCONV_USER_CWD: '/home/u' },
    resources: { partition: 'gpu', gres: 'gpu:1', time: '01:00:00', cpusPerTask: 4, mem: '16G', extra: ['account=lab', '--qos=low'], ...extra },
    jobs: [
      { name: 'pretrain', tasks: [{ key: 'a/seed-0/pretrain', argv: ['node', 'x.ts', '--seeds', '0'] }] },
      {
        name: 'finetune',
        tasks: [
          { key: 'a/seed-0/refocus', argv: ['node', 'x.ts', '--stages', 'refocus', 'fuse'] },
          { key: 'a/seed-0/control', argv: ['node', 'x.ts', '--data', "it's here"] },
        ],
        dependsOn: { type: 'afterok', jobs: ['pretrain'] },
      },
      { name: 'report', tasks: [{ key: 'report', argv: ['node', 'r.ts'] }], dependsOn: { type: 'afterany', jobs: ['pretrain', 'finetune'] }, requeue: false },
    ],
  };
}

describe('sbatch scripts', () => {
  it('an array job has one case per task, the passthrough options, signal forwarding and bounded requeue', () => {
    const p = plan('/out/slurm');
    const s = sbatchScript(p, p.jobs[1]!);
    const sb = s.split('\n').filter((l) => l.startsWith('#SBATCH'));
    expect(sb).toEqual([
      '#SBATCH --job-name=finetune',
      '#SBATCH --output=/out/slurm/logs/finetune-%A_%a.out',
      '#SBATCH --open-mode=append',
      '#SBATCH --array=0-1',
      '#SBATCH --partition=gpu',
      '#SBATCH --gres=gpu:1',
      '#SBATCH --time=01:00:00',
      '#SBATCH --cpus-per-task=4',
      '#SBATCH --mem=16G',
      '#SBATCH --signal=B:USR1@120',
      '#SBATCH --requeue',
      '#SBATCH --account=lab',
      '#SBATCH --qos=low',
    ]);
    expect(s).toContain("cd '/repo/pkg dir'");
    expect(s).toContain('export REFCONV_USER_CWD=/home/u');
    expect(s).toContain(`  0) KEY=a/seed-0/refocus; STATUS=/out/slurm/status/a__seed-0__refocus.json; CMD=(node x.ts --stages refocus fuse) ;;`);
    expect(s).toContain(`  1) KEY=a/seed-0/control; STATUS=/out/slurm/status/a__seed-0__control.json; CMD=(node x.ts --data 'it'\\''s here') ;;`);
    expect(s).not.toContain('  2)');
    expect(s).toContain(`[ $RC -eq ${PREEMPTED_EXIT_CODE} ]`);
    expect(s).toContain('[ "$RESTARTS" -lt 20 ]');
    expect(s).toContain('scontrol requeue "$SLURM_JOB_ID"');
    expect(spawnSync('bash', ['-n'], { input: s }).status).toBe(0);
  });

  it('a single-task job is not an array; a report job is never requeued; signal seconds and max requeues pass through', () => {
    const p = plan('/o', { signalSeconds: 300, maxRequeues: 3 });
    const pre = sbatchScript(p, p.jobs[0]!);
    expect(pre).not.toContain('--array');
    expect(pre).toContain('#SBATCH --output=/o/logs/pretrain-%j.out');
    expect(pre).toContain('#SBATCH --signal=B:USR1@300');
    expect(pre).toContain('[ "$RESTARTS" -lt 3 ]');
    const rep = sbatchScript(p, p.jobs[2]!);
    expect(rep).toContain('#SBATCH --no-requeue');
    expect(rep).not.toContain('scontrol requeue');
    expect(rep).not.toContain('--signal');
  });

  it('dependencies become --dependency with the earlier jobs\' ids; an unknown dependency and a bad name are errors', () => {
    const p = plan('/o');
    expect(sbatchArgs(p, p.jobs[0]!, {})).toEqual(['--parsable', '/o/pretrain.sbatch']);
    expect(sbatchArgs(p, p.jobs[1]!, { pretrain: '11' })).toEqual(['--parsable', '--dependency=afterok:11', '--kill-on-invalid-dep=yes', '/o/finetune.sbatch']);
    expect(sbatchArgs(p, p.jobs[2]!, { pretrain: '11', finetune: '12' })).toEqual(['--parsable', '--dependency=afterany:11:12', '--kill-on-invalid-dep=yes', '/o/report.sbatch']);
    expect(() => sbatchArgs(p, p.jobs[1]!, {})).toThrow("slurm job 'finetune' depends on 'pretrain', which is not submitted before it");
    expect(() => sbatchScript(p, { name: 'a b', tasks: [{ key: 'k', argv: ['x'] }] })).toThrow("slurm job name 'a b' may only hold letters");
  });
});

describe('submission and status', () => {
  it('submits in order through sbatch with the ids of earlier jobs, writes plan.json; dry run submits nothing', () => {
    const dir = tmp();
    const fake = path.join(dir, 'sbatch');
    const calls = path.join(dir, 'calls.txt');
    fs.writeFileSync(fake, `#!/bin/bash\necho "$@" >> ${calls}\nn=$(wc -l < ${calls})\necho "$((100 + n));cluster"\n`, { mode: 0o755 });
    const printed: string[] = [];
    const p = plan(path.join(dir, 'slurm'));
    const sub = submitPlan(p, { sbatch: fake, print: (s) => printed.push(s) });
    expect(sub.jobIds).toEqual({ pretrain: '101', finetune: '102', report: '103' });
    expect(fs.readFileSync(calls, 'utf8').trim().split('\n')).toEqual([
      `--parsable ${dir}/slurm/pretrain.sbatch`,
      `--parsable --dependency=afterok:101 --kill-on-invalid-dep=yes ${dir}/slurm/finetune.sbatch`,
      `--parsable --dependency=afterany:101:102 --kill-on-invalid-dep=yes ${dir}/slurm/report.sbatch`,
    ]);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'slurm', 'plan.json'), 'utf8')).jobIds.finetune).toBe('102');
    expect(printed).toContain('submitted finetune: job 102 (array of 2)');

    const dry = tmp();
    const out: string[] = [];
    submitPlan(plan(path.join(dry, 'slurm')), { dryRun: true, sbatch: '/nonexistent', print: (s) => out.push(s) });
    expect(fs.existsSync(path.join(dry, 'slurm'))).toBe(false);
    expect(out.join('\n')).toContain('# submit: FINETUNE_JOB=$(sbatch --parsable "--dependency=afterok:$PRETRAIN_JOB" --kill-on-invalid-dep=yes');
  });

  it('a failing sbatch names the script and its message', () => {
    const dir = tmp();
    const fake = path.join(dir, 'sbatch');
    fs.writeFileSync(fake, '#!/bin/bash\necho "sbatch: error: invalid partition specified: gpu" >&2\nexit 1\n', { mode: 0o755 });
    expect(() => submitPlan(plan(path.join(dir, 'slurm')), { sbatch: fake, print: () => undefined })).toThrow(/sbatch .*pretrain\.sbatch failed: sbatch: error: invalid partition specified: gpu/);
  });

  it('squeue lines (array ranges expanded) and status files give each task its state', () => {
    expect([...parseSqueue('12_[2-3,5%2] PENDING (Dependency)\n13 RUNNING None\n')].map(([k, v]) => `${k}:${v.state}`)).toEqual(['12_2:PENDING', '12_3:PENDING', '12_5:PENDING', '13:RUNNING']);
    const dir = tmp();
    const p = { ...plan(dir), jobIds: { pretrain: '10', finetune: '11', report: '12' }, submittedAt: '' };
    fs.mkdirSync(path.join(dir, 'status'));
    fs.writeFileSync(statusFile(dir, 'a/seed-0/pretrain'), JSON.stringify({ state: 'done', exitCode: 0, restarts: 1 }));
    fs.writeFileSync(statusFile(dir, 'a/seed-0/control'), JSON.stringify({ state: 'failed', exitCode: 1, restarts: 0 }));
    const rows = planStatus(p, '11_0 RUNNING None\n12 PENDING (Dependency)\n');
    expect(rows.map((r) => `${r.key} ${r.slurmId} ${r.state} ${r.detail}`)).toEqual([
      'a/seed-0/pretrain 10 done exit 0, 1 requeue(s)',
      'a/seed-0/refocus 11_0 running RUNNING',
      'a/seed-0/control 11_1 failed exit 1',
      'report 12 pending PENDING (Dependency)',
    ]);
    // gone from the queue without a status file: failed (cancelled, or its dependency failed)
    expect(planStatus(p, '', '').find((r) => r.key === 'report')).toMatchObject({ state: 'failed', detail: expect.stringContaining('not in the queue') });
  });

  it('a requeued task waiting again is pending; sacct decides tasks that left the queue without a status file', () => {
    // sacct -n -P -X -o JobID,State,ExitCode, as a cluster with accounting prints it
    expect([...parseSacct('10|COMPLETED|0:0\n11_0|TIMEOUT|0:15\n11_[1-2]|CANCELLED by 0|0:0\n12|PENDING|0:0\n')].map(([k, v]) => `${k}:${v.state}:${v.exitCode}`)).toEqual([
      '10:COMPLETED:0:0',
      '11_0:TIMEOUT:0:15',
      '11_1:CANCELLED by 0:0:0',
      '11_2:CANCELLED by 0:0:0',
      '12:PENDING:0:0',
    ]);
    const dir = tmp();
    const p = { ...plan(dir), jobIds: { pretrain: '10', finetune: '11', report: '12' }, submittedAt: '' };
    fs.mkdirSync(path.join(dir, 'status'));
    fs.writeFileSync(statusFile(dir, 'a/seed-0/refocus'), JSON.stringify({ state: 'requeued', exitCode: 75, restarts: 0, jobId: '14' }));
    const waiting = planStatus(p, '11_0 PENDING (BeginTime)\n', '');
    expect(waiting.find((r) => r.key === 'a/seed-0/refocus')).toMatchObject({ state: 'pending', detail: 'requeued after preemption (exit 75); PENDING (BeginTime)' });
    const rows = planStatus(p, '', '10|COMPLETED|0:0\n11_0|CANCELLED by 0|0:0\n11_1|TIMEOUT|0:15\n');
    expect(rows.map((r) => `${r.key} ${r.state} ${r.detail}`)).toEqual([
      'a/seed-0/pretrain done sacct: COMPLETED 0:0',
      'a/seed-0/refocus failed sacct: CANCELLED by 0, after requeued with exit 75',
      'a/seed-0/control failed sacct: TIMEOUT (exit 0:15)',
      'report failed not in the queue and no exit status (cancelled, or never ran)',
    ]);
    fs.writeFileSync(statusFile(dir, 'a/seed-0/control'), JSON.stringify({ state: 'stopped', exitCode: 75, restarts: 0, jobId: '15' }));
    expect(planStatus(p, '11_1 PENDING (BeginTime)\n', '').find((r) => r.key === 'a/seed-0/control')).toMatchObject({ state: 'pending', detail: 'requeued after SIGTERM (exit 75); PENDING (BeginTime)' });
    expect(planStatus(p, '', '').find((r) => r.key === 'a/seed-0/control')).toMatchObject({ state: 'failed', detail: 'stopped by SIGTERM (exit 75) and no longer in the queue: cancelled' });
    // without accounting, the completion log knows an array task by its own job id (from its status file)
    expect(planStatus(p, '', '14|CANCELLED|0:0\n').find((r) => r.key === 'a/seed-0/refocus')).toMatchObject({ state: 'failed', detail: 'sacct: CANCELLED, after requeued with exit 75' });
  });

  it('--status prints aligned columns and a count per state', () => {
    const t = formatStatus([
      { job: 'pretrain', key: 'a/seed-0/pretrain', slurmId: '5_0', state: 'done', detail: 'exit 0' },
      { job: 'finetune', key: 'a/seed-0/control', slurmId: '6_1', state: 'running', detail: 'RUNNING' },
      { job: 'report', key: 'report', slurmId: '9', state: 'pending', detail: 'PENDING Dependency' },
    ]);
    expect(t.split('\n')).toEqual([
      'job       task               slurm id  state    detail',
      'pretrain  a/seed-0/pretrain  5_0       done     exit 0',
      'finetune  a/seed-0/control   6_1       running  RUNNING',
      'report    report             9         pending  PENDING Dependency',
      '',
      '1 done, 1 running, 1 pending',
    ]);
  });

  it('a single run is one job: the same command minus the launcher options, plus --launcher local --out --resume', () => {
    const p = singleRunPlan({ out: '/runs/d', command: { cwd: '/pkg', argv: ['node', 'train.ts'] }, userArgv: ['--epochs', '2', '--launcher', 'slurm', '--gres', 'gpu:1', '--out', 'rel', '--resume', '--sbatch', 'a=1', 'b=2', '--dry-run', '--lr', '0.1'], resources: { gres: 'gpu:1' }, jobName: 'detect-train' });
    expect(p.dir).toBe('/runs/d/slurm');
    expect(p.jobs).toEqual([{ name: 'detect-train', tasks: [{ key: 'train', argv: ['node', 'train.ts', '--epochs', '2', '--lr', '0.1', '--launcher', 'local', '--out', '/runs/d', '--resume'] }] }]);
    expect(dropOptions(['--a', '1', '--stages', 'x', 'y', '--numSeeds=3', '--no-resume', '--b'], ['stages', 'num-seeds', 'resume'])).toEqual(['--a', '1', '--b']);
  });

  it('the script requeues a preempted task (exit 75) and records a crash as failed, without Slurm', () => {
    const dir = tmp();
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'scontrol'), `#!/bin/bash\necho "$@" > ${dir}/scontrol.txt\n`, { mode: 0o755 });
    const run = (code: number, restarts: number) => {
      const p: SlurmPlan = { dir, cwd: dir, resources: { maxRequeues: 2 }, jobs: [{ name: 'j', tasks: [{ key: 't', argv: ['bash', '-c', `exit ${code}`] }] }] };
      fs.writeFileSync(path.join(dir, 'j.sh'), sbatchScript(p, p.jobs[0]!));
      fs.rmSync(path.join(dir, 'scontrol.txt'), { force: true });
      const r = spawnSync('bash', [path.join(dir, 'j.sh')], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, SLURM_JOB_ID: '77', SLURM_RESTART_COUNT: String(restarts) }, encoding: 'utf8' });
      return { rc: r.status, status: JSON.parse(fs.readFileSync(statusFile(dir, 't'), 'utf8')), requeued: fs.existsSync(path.join(dir, 'scontrol.txt')) ? fs.readFileSync(path.join(dir, 'scontrol.txt'), 'utf8').trim() : '' };
    };
    expect(run(PREEMPTED_EXIT_CODE, 0)).toMatchObject({ rc: 0, status: { state: 'requeued', exitCode: 75 }, requeued: 'requeue 77' });
    expect(run(PREEMPTED_EXIT_CODE, 2)).toMatchObject({ rc: 75, status: { state: 'failed', restarts: 2 }, requeued: '' }); // requeue limit reached
    expect(run(1, 0)).toMatchObject({ rc: 1, status: { state: 'failed', exitCode: 1 }, requeued: '' });
    expect(run(0, 0)).toMatchObject({ rc: 0, status: { state: 'done' } });
  });

  it('a signalled task: after SIGUSR1 (time-limit warning) the script requeues it, after SIGTERM (scancel, preemption) it only stops', async () => {
    const dir = tmp();
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'scontrol'), `#!/bin/bash\necho "$@" > ${dir}/scontrol.txt\n`, { mode: 0o755 });
    // a trainer that checkpoints and exits 75 when signalled (as runEpochs does), recording the signal it got
    const trainer = `trap 'echo usr1 > ${dir}/child.txt; exit ${PREEMPTED_EXIT_CODE}' USR1; trap 'echo term > ${dir}/child.txt; exit ${PREEMPTED_EXIT_CODE}' TERM; echo started > ${dir}/child.txt; while true; do sleep 0.05; done`;
    const p: SlurmPlan = { dir, cwd: dir, resources: {}, jobs: [{ name: 'j', tasks: [{ key: 't', argv: ['bash', '-c', trainer] }] }] };
    fs.writeFileSync(path.join(dir, 'j.sh'), sbatchScript(p, p.jobs[0]!));
    const run = async (signal: NodeJS.Signals) => {
      for (const f of ['scontrol.txt', 'child.txt']) fs.rmSync(path.join(dir, f), { force: true });
      const child = spawn('bash', [path.join(dir, 'j.sh')], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, SLURM_JOB_ID: '88' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      const deadline = Date.now() + 20_000;
      while (!fs.existsSync(path.join(dir, 'child.txt')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      child.kill(signal);
      const rc = await new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      return { rc, out, child: fs.readFileSync(path.join(dir, 'child.txt'), 'utf8').trim(), status: JSON.parse(fs.readFileSync(statusFile(dir, 't'), 'utf8')), requeued: fs.existsSync(path.join(dir, 'scontrol.txt')) ? fs.readFileSync(path.join(dir, 'scontrol.txt'), 'utf8').trim() : '' };
    };
    const usr1 = await run('SIGUSR1');
    expect(usr1).toMatchObject({ rc: 0, child: 'usr1', status: { state: 'requeued', exitCode: 75 }, requeued: 'requeue 88' });
    expect(usr1.out).toContain('[slurm] SIGUSR1: stopping t after its current step');
    const term = await run('SIGTERM');
    expect(term).toMatchObject({ rc: 75, child: 'usr1', status: { state: 'stopped', exitCode: 75 }, requeued: '' });
    expect(term.out).toMatch(/stopped by SIGTERM \(exit 75\), checkpoint written: Slurm requeues a preempted job itself; a cancelled one stays cancelled/);
  }, 60_000);
});
