import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyDeprecatedAliases, createCli, REPO_ROOT, resolveUserPath } from '@refconv/engine';
import { defaultConfig } from '../src/config.js';
import { describe, expect, it } from 'vitest';
import { DEPRECATED_ALIASES, protocolOptions, toRunConfig } from '../src/cli/args.js';
import { tmpDir, writeTinyFashionMnist } from './helpers.js';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('protocol CLI options', () => {
  it('takes values from --config and lets flags override them', async () => {
    const f = path.join(tmpDir('cls-cfg-'), 'c.json');
    fs.writeFileSync(f, JSON.stringify({ lr: 0.3, epochs: 9, 'map-k': 1, grouping: 'full', seeds: [4, 5] }));
    const a = await protocolOptions(createCli(['--config', f, '--epochs', '2'], 't'), 1).parseAsync();
    const cfg = toRunConfig(a);
    expect(cfg.pretrain.lr).toBe(0.3);
    expect(cfg.pretrain.epochs).toBe(2);
    expect(cfg.refocus).toEqual({ mapK: 1, grouping: 'full', init: 'default', frozen: 'official' });
    expect(cfg.seeds).toEqual([4, 5]);
  });

  it('old spellings are deprecated aliases of the shared names, with a warning', async () => {
    const warnings: string[] = [];
    const argv = applyDeprecatedAliases(['--init', 'zero', '--baseline', 'b.safetensors'], DEPRECATED_ALIASES, 't', (l) => warnings.push(l));
    const cfg = toRunConfig(await protocolOptions(createCli(argv, 't'), 1).parseAsync());
    expect(cfg.refocus.init).toBe('zero');
    expect(cfg.baseline).toBe(resolveUserPath('b.safetensors')); // relative to where the command was run
    expect(cfg.out).toBe(defaultConfig().out);
    expect(cfg.out).toBe(path.join(REPO_ROOT, 'runs', 'classify', 'train'));
    expect(warnings).toEqual(['t: --init is deprecated; use --refconv-init', 't: --baseline is deprecated; use --from']);
    expect(toRunConfig(await protocolOptions(createCli(['--seed', '3', '--num-seeds', '2'], 't'), 1).parseAsync()).seeds).toEqual([3, 4]);
  });

  it('validates values', async () => {
    const parse = async (argv: string[]) => toRunConfig(await protocolOptions(createCli(argv, 't'), 1).parseAsync());
    await expect(parse(['--scale', '0.9', '0.1'])).rejects.toThrow(/--scale needs two numbers lo hi/);
    expect((await parse(['--num-seeds', '3'])).seeds).toEqual([0, 1, 2]);
  });

  it('an unknown option or a broken config file is an error (exit code 2 / 1)', () => {
    const run = (args: string[]) => spawnSync(process.execPath, ['--conditions=@refconv/source', '--import', 'tsx', 'src/cli/train.ts', ...args], { cwd: pkg, encoding: 'utf8' });
    const r = run(['--epocs', '3']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/Unknown argument: epocs/);
    // invalid shared options are refused before anything is built (issue 15: --lr -1 trained silently)
    const neg = run(['--lr', '-1', '--batch-size', '0']);
    expect(neg.status).toBe(2);
    expect(neg.stderr).toMatch(/--batch-size must be a positive integer, got 0; --lr must be a finite number > 0, got -1/);
    expect(neg.stdout).not.toMatch(/backend:/);
    const bad = path.join(tmpDir('cls-cfg-'), 'bad.json');
    fs.writeFileSync(bad, '{"lr": 0.1,');
    const r2 = run(['--config', bad]);
    expect(r2.status).not.toBe(0);
    expect(r2.stderr).toMatch(/bad\.json is not valid JSON/);
  }, 60_000);

  it('a diverging run stops with a non-zero exit naming the non-finite tensor or loss, and writes no final checkpoint', () => {
    const data = tmpDir('cls-nan-data-');
    writeTinyFashionMnist(data, 64, 16);
    const out = tmpDir('cls-nan-');
    const r = spawnSync(process.execPath, ['--conditions=@refconv/source', '--import', 'tsx', 'src/cli/train.ts',
      '--data', data, '--arch', 'cifar_resnet20', '--width', '0.25', '--batch-size', '8', '--epochs', '4', '--stages', 'pretrain', '--workers', '0', '--out', out, '--lr', '100'], { cwd: pkg, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/classify:train failed: \[pretrain\] epoch \d+: (weight '[^']+' holds \d+ non-finite value|validation loss is NaN|sgdStep: loss is)/);
    expect(fs.existsSync(path.join(out, 'seed-0', 'pretrain', 'final.safetensors'))).toBe(false);
  }, 120_000);
});
