import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCli } from '@refconv/engine';
import { describe, expect, it } from 'vitest';
import { protocolOptions, toRunConfig } from '../src/cli/args.js';
import { tmpDir } from './helpers.js';

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

  it('validates values', async () => {
    const parse = async (argv: string[]) => toRunConfig(await protocolOptions(createCli(argv, 't'), 1).parseAsync());
    await expect(parse(['--scale', '0.9', '0.1'])).rejects.toThrow(/--scale needs two numbers lo hi/);
    await expect(parse(['--batch-size', '0'])).rejects.toThrow(/--batch-size must be a positive integer/);
    expect((await parse(['--num-seeds', '3'])).seeds).toEqual([0, 1, 2]);
  });

  it('an unknown option or a broken config file is an error (exit code 2 / 1)', () => {
    const run = (args: string[]) => spawnSync(process.execPath, ['--conditions=@refconv/source', '--import', 'tsx', 'src/cli/train.ts', ...args], { cwd: pkg, encoding: 'utf8' });
    const r = run(['--epocs', '3']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/Unknown argument: epocs/);
    const bad = path.join(tmpDir('cls-cfg-'), 'bad.json');
    fs.writeFileSync(bad, '{"lr": 0.1,');
    const r2 = run(['--config', bad]);
    expect(r2.status).not.toBe(0);
    expect(r2.stderr).toMatch(/bad\.json is not valid JSON/);
  }, 60_000);
});
