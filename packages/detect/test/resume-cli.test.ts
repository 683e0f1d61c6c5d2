/**
 * `detect:train` killed with SIGKILL after its first epoch checkpoint and resumed with --resume
 * ends with exactly the weights and losses of an uninterrupted run (the shared epoch loop's
 * resume); invalid options are refused before the detector is built.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCheckpoint } from '@refconv/engine';
import { describe, expect, it } from 'vitest';
import { expectSameCheckpoints, killAndResume } from '../../engine/test/helpers/kill-resume.js';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = (out: string) => [
  '--conditions=@refconv/source', '--import', 'tsx', 'src/cli/train.ts',
  '--backbone', 'tiny', '--fpn-channels', '8', '--head-convs', '1', '--min-size', '96', '--max-size', '128', '--batch-size', '2',
  '--train-limit', '4', '--val-limit', '1', '--warmup-steps', '1', '--epochs', '3', '--visualize', '0', '--out', out,
];

describe('detect:train kill and resume', () => {
  it('a killed-and-resumed run equals an uninterrupted run with the same seed', async () => {
    const { fullDir: full, killedDir: killed } = await killAndResume(pkg, args, 3);
    expectSameCheckpoints(full, killed, ['last.safetensors'], (h) => [h.trainLoss, h.train]);
    const [a, b] = [full, killed].map((d) => loadCheckpoint(path.join(d, 'final.safetensors')));
    for (const [name, t] of a!.weights) expect(Array.from(b!.weights.get(name)!.data as Float32Array), `final ${name}`).toEqual(Array.from(t.data as Float32Array));
    expect(fs.readFileSync(path.join(killed, 'test_stats.json'), 'utf8')).toBe(fs.readFileSync(path.join(full, 'test_stats.json'), 'utf8'));
  }, 300_000);

  it('SIGTERM (preemption) stops the run with exit code 75 and --resume still ends bit-identical', async () => {
    const { fullDir: full, killedDir: killed } = await killAndResume(pkg, args, 3, undefined, 'SIGTERM');
    const [a, b] = [full, killed].map((d) => loadCheckpoint(path.join(d, 'final.safetensors')));
    for (const [name, t] of a!.weights) expect(Array.from(b!.weights.get(name)!.data as Float32Array), `final ${name}`).toEqual(Array.from(t.data as Float32Array));
  }, 300_000);

  it('--lr -1 and --epochs 0 are refused with exit code 2 before the detector is built; old flags warn', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'det-bad-'));
    const bad = spawnSync(process.execPath, [...args(out), '--lr', '-1', '--max-test-images', '1'], { cwd: pkg, encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/detect:train: --max-test-images is deprecated; use --val-limit/);
    expect(bad.stderr).toMatch(/--lr must be a finite number > 0, got -1/);
    expect(bad.stdout).not.toMatch(/backend:|detector:/);
    const zero = spawnSync(process.execPath, [...args(out).filter((a, i, all) => a !== '--epochs' && all[i - 1] !== '--epochs'), '--epochs', '0'], { cwd: pkg, encoding: 'utf8' });
    expect(zero.status).toBe(2);
    expect(zero.stderr).toMatch(/--epochs must be a positive integer, got 0/);
    expect(fs.readdirSync(out)).toEqual([]);
  }, 60_000);
});
