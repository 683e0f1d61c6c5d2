/**
 * A training run killed with SIGKILL after its first epoch checkpoint and resumed with
 * --resume must end with exactly the weights and metrics of an uninterrupted run.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expectSameCheckpoints, killAndResume } from '../../engine/test/helpers/kill-resume.js';
import { tmpDir, writeTinyFashionMnist } from './helpers.js';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const data = tmpDir('cls-resume-data-');
writeTinyFashionMnist(data, 64, 16);
const args = (out: string) => [
  '--conditions=@refconv/source', '--import', 'tsx', 'src/cli/train.ts',
  '--data', data, '--arch', 'cifar_resnet20', '--width', '0.25', '--train-limit', '32', '--batch-size', '8',
  '--epochs', '2', '--stages', 'pretrain', '--workers', '0', '--out', out,
];

describe('kill and resume', () => {
  it('a killed-and-resumed run equals an uninterrupted run with the same seed', async () => {
    const { fullDir: full, killedDir: killed } = await killAndResume(pkg, args, 2, (out) => path.join(out, 'seed-0', 'pretrain', 'last.safetensors'));
    // issue 15: the report of a pretrain-only run describes only the pretraining
    const report = fs.readFileSync(path.join(full, 'report.md'), 'utf8');
    expect(report).toMatch(/baseline pretrained here for 2 epochs \(lr 0\.1\)\. Seeds: 0\./);
    expect(report).not.toMatch(/refocus and control/);

    expectSameCheckpoints(full, killed, ['seed-0/pretrain/final.safetensors'], (h) => [h.trainLoss, h.val!.top1]);

    // issue 15: a resume whose options changed is refused, naming each old -> new, and touches nothing
    const before = fs.readFileSync(path.join(killed, 'seed-0', 'pretrain', 'final.safetensors'));
    const changed = spawnSync(process.execPath, [...args(killed), '--resume', '--lr', '0.05', '--momentum', '0.8'], { cwd: pkg, encoding: 'utf8' });
    expect(changed.status).toBe(1);
    expect(changed.stderr).toMatch(/final\.safetensors was written with different options: optim\.lr 0\.1 -> 0\.05, optim\.momentum 0\.9 -> 0\.8\. .*--accept-changed-options/);
    expect(fs.readFileSync(path.join(killed, 'seed-0', 'pretrain', 'final.safetensors')).equals(before)).toBe(true);
  }, 480_000); // three CLI processes (tsx + tfjs start-up each): slow on a loaded machine
});
