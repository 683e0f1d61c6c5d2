/** The shared training options: one heading in --help, invalid values refused at parse time, deprecated aliases. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyDeprecatedAliases, trainingOptionProblems, TRAINING_OPTIONS_HEADING, warmupStepsOf } from '../src/training-options.js';

const defaults = { epochs: 2, 'batch-size': 8, lr: 0.1, momentum: 0.9, 'weight-decay': 1e-4, 'warmup-epochs': 1, 'warmup-start-factor': 0.01, seed: 0 };

describe('shared training options', () => {
  it('refuses invalid numbers, naming the option and value', () => {
    expect(trainingOptionProblems(defaults)).toEqual([]);
    expect(trainingOptionProblems({ ...defaults, lr: -1 })).toEqual(['--lr must be a finite number > 0, got -1']);
    expect(trainingOptionProblems({ ...defaults, epochs: 0, 'batch-size': 2.5 })).toEqual(['--epochs must be a positive integer, got 0', '--batch-size must be a positive integer, got 2.5']);
    expect(trainingOptionProblems({ ...defaults, momentum: 1, 'weight-decay': -0.1, 'train-limit': -3 })).toEqual([
      '--momentum must be in [0, 1), got 1', '--weight-decay must be a finite number >= 0, got -0.1', '--train-limit must be a positive integer, got -3',
    ]);
    expect(trainingOptionProblems({ ...defaults, lr: NaN })).toHaveLength(1);
  });

  it('a CLI given --lr -1 exits 2 with the message, before doing anything; --help lists the group', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-opts-'));
    const script = path.join(dir, 'cli.mts');
    const src = path.resolve(import.meta.dirname, '../src/index.ts');
    fs.writeFileSync(script, `import { createCli, trainingOptions } from ${JSON.stringify(src)};
const a = trainingOptions(createCli(process.argv.slice(2), 'toy'), { epochs: 2, batchSize: 8, lr: 0.1, momentum: 0.9, weightDecay: 0, warmupEpochs: 0, warmupStartFactor: 0.01, seed: 0, mapK: 3, grouping: 'official', refconvInit: 'default', frozen: 'official' }).parseSync();
console.log('BUILT MODEL lr=' + a.lr);\n`);
    const run = (args: string[]) => spawnSync(process.execPath, ['--conditions=@refconv/source', '--import', 'tsx', script, ...args], { encoding: 'utf8', cwd: import.meta.dirname });
    const bad = run(['--lr', '-1']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/toy: --lr must be a finite number > 0, got -1/);
    expect(bad.stdout).not.toMatch(/BUILT/);
    const ok = run(['--lr', '0.5']);
    expect(ok.stdout).toMatch(/BUILT MODEL lr=0.5/);
    const help = run(['--help']).stdout;
    const section = help.slice(help.indexOf(TRAINING_OPTIONS_HEADING));
    for (const o of ['--epochs', '--batch-size', '--lr', '--momentum', '--weight-decay', '--warmup-epochs', '--seed', '--out', '--resume', '--train-limit', '--val-limit', '--refconv', '--map-k', '--grouping', '--refconv-init', '--frozen', '--from']) {
      expect(section, o).toContain(o);
    }
  }, 60_000);

  it('rewrites deprecated spellings with one warning per flag', () => {
    const warnings: string[] = [];
    const out = applyDeprecatedAliases(['--limit-train', '4', '--limit-train=5', '--init', 'x.safetensors', '--epochs', '2'], { 'limit-train': 'train-limit', init: 'from' }, 'segment:train', (l) => warnings.push(l));
    expect(out).toEqual(['--train-limit', '4', '--train-limit=5', '--from', 'x.safetensors', '--epochs', '2']);
    expect(warnings).toEqual(['segment:train: --limit-train is deprecated; use --train-limit', 'segment:train: --init is deprecated; use --from']);
  });

  it('warmup: steps when given, else epochs x steps per epoch', () => {
    expect(warmupStepsOf({ warmupEpochs: 0.5 }, 10)).toBe(5);
    expect(warmupStepsOf({ warmupEpochs: 0.5, warmupSteps: 100 }, 10)).toBe(100);
  });

  it('relative path options resolve against the folder the user ran the command from (REFCONV_USER_CWD, else INIT_CWD), keywords stay', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-paths-'));
    const script = path.join(dir, 'paths.mts');
    const src = path.resolve(import.meta.dirname, '../src/index.ts');
    fs.writeFileSync(script, `import { createCli, resolvePaths, defaultRunDir, REPO_ROOT } from ${JSON.stringify(src)};
const a = createCli(process.argv.slice(2), 'toy').option('data', { type: 'string' }).option('out', { type: 'string' }).option('from-file', { type: 'string' })
  .middleware(resolvePaths(['data', 'out', 'from-file'], (v) => v === 'fashion-mnist')).parseSync();
console.log(JSON.stringify({ data: a.data, out: a.out, fromFile: a.fromFile, run: defaultRunDir('detect', 'x'), root: REPO_ROOT }));\n`);
    const run = (env: Record<string, string>, args: string[]) => {
      const r = spawnSync(process.execPath, ['--conditions=@refconv/source', '--import', 'tsx', script, ...args], { encoding: 'utf8', cwd: import.meta.dirname, env: { ...process.env, REFCONV_USER_CWD: '', INIT_CWD: '', ...env } });
      return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, string>;
    };
    const a = run({ INIT_CWD: '/home/u/project' }, ['--data', 'fashion-mnist', '--out', 'runs/a', '--from-file', '../b.safetensors']);
    expect(a).toMatchObject({ data: 'fashion-mnist', out: '/home/u/project/runs/a', fromFile: '/home/u/b.safetensors' });
    expect(a.run).toBe(path.join(a.root!, 'runs', 'detect', 'x'));
    expect(run({ INIT_CWD: '/home/u/project', REFCONV_USER_CWD: '/srv' }, ['--data', 'd', '--out', '/abs/o'])).toMatchObject({ data: '/srv/d', out: '/abs/o' });
    expect(run({}, ['--data', 'd']).data).toBe(path.join(import.meta.dirname, 'd')); // no npm: the process cwd
  }, 60_000);
});
