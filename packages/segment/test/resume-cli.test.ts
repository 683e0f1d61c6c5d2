/**
 * `segment:train` killed with SIGKILL after its first epoch checkpoint and resumed with --resume
 * ends with exactly the weights and metrics of an uninterrupted run (the shared epoch loop's
 * resume); invalid options are refused before anything is built.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expectSameCheckpoints, killAndResume } from '../../engine/test/helpers/kill-resume.js';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = (out: string) => [
  '--conditions=@refconv/source', '--import', 'tsx', 'src/cli/train.ts',
  '--crop', '48x64', '--scale', '0.2', '--channels', '8', '--batch-size', '2', '--epochs', '3', '--train-limit', '4', '--val-limit', '2', '--eval-every', '1', '--out', out,
];

describe('segment:train kill and resume', () => {
  it('a killed-and-resumed run equals an uninterrupted run with the same seed', async () => {
    const { fullDir: full, killedDir: killed } = await killAndResume(pkg, args, 3);
    expectSameCheckpoints(full, killed, ['last.safetensors', 'best.safetensors'], (h) => [h.trainLoss, h.val?.mIoU]);
  }, 300_000);

  it('SIGTERM (preemption) stops the run with exit code 75 and --resume still ends bit-identical', async () => {
    const { fullDir: full, killedDir: killed } = await killAndResume(pkg, args, 3, undefined, 'SIGTERM');
    expectSameCheckpoints(full, killed, ['last.safetensors', 'best.safetensors'], (h) => [h.trainLoss, h.val?.mIoU]);
  }, 300_000);

  it('--lr -1 and --refconv without --from are refused with exit code 2 before anything is built', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'seg-bad-'));
    const bad = spawnSync(process.execPath, [...args(out), '--lr', '-1'], { cwd: pkg, encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/segment:train: --lr must be a finite number > 0, got -1/);
    expect(bad.stdout).not.toMatch(/backend:/);
    const noFrom = spawnSync(process.execPath, [...args(out), '--refconv'], { cwd: pkg, encoding: 'utf8' });
    expect(noFrom.status).toBe(2);
    expect(noFrom.stderr).toMatch(/--refconv refocuses a trained segmenter: give its checkpoint with --from/);
    expect(fs.readdirSync(out)).toEqual([]);
  }, 60_000);
});
