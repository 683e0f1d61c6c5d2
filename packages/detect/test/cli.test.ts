import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { readJsonl } from '@refconv/engine';
import { describe, expect, it } from 'vitest';
import { loadDetector } from '../src/index.js';

const run = promisify(execFile);
const pkg = new URL('..', import.meta.url).pathname;
const cli = (script: string, args: string[]) =>
  run('node', ['--conditions=@refconv/source', '--import', 'tsx', `src/cli/${script}.ts`, ...args], { cwd: pkg, env: { ...process.env, FORCE_COLOR: '0' } });

const small = ['--backbone', 'tiny', '--fpn-channels', '8', '--head-convs', '1', '--min-size', '96', '--max-size', '128', '--batch-size', '2', '--max-train-images', '2', '--max-test-images', '2', '--warmup-steps', '1'];

describe('train and eval CLIs (BCCD, tiny)', () => {
  it('trains, checkpoints, resumes, evaluates (COCO JSON + PNGs); bad checkpoints are named', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'detect-cli-'));
    const first = await cli('train', [...small, '--epochs', '1', '--out', out, '--visualize', '1']);
    expect(first.stdout).toMatch(/Average Precision {2}\(AP\) @\[ IoU=0.50:0.95 \| area= {3}all \| maxDets=100 \]/);
    expect(first.stderr).toMatch(/BloodImage_00343\.xml object 4 \(RBC\): degenerate box/);
    expect(fs.existsSync(path.join(out, 'final.safetensors'))).toBe(true);
    expect(fs.readdirSync(path.join(out, 'test_vis'))).toHaveLength(1);
    // the dataset counts stay with the run: BCCD's training split has one zero-area box (dropped)
    const datasets = JSON.parse(fs.readFileSync(path.join(out, 'datasets.json'), 'utf8'));
    expect(datasets.train.summary).toMatchObject({ images: 205, droppedZeroArea: 1, clipped: 0 });
    expect(datasets.train.handled.join('\n')).toMatch(/BloodImage_00343\.xml object 4 \(RBC\): degenerate box/);
    expect(datasets.test.summary).toMatchObject({ images: 72 });

    // a longer run changes the schedule: refused (old -> new) unless accepted
    await expect(cli('train', [...small, '--epochs', '2', '--out', out, '--resume', '--visualize', '0'])).rejects.toThrow(/was written with different options: epochs 1 -> 2, warmupSteps 0 -> 1\. /);
    const second = await cli('train', [...small, '--epochs', '2', '--out', out, '--resume', '--accept-changed-options', '--visualize', '0']);
    expect(second.stderr).toMatch(/resuming from .*last\.safetensors: epoch 1\/2/);
    expect(readJsonl<{ type: string; epoch: number }>(path.join(out, 'metrics.jsonl')).filter((r) => r.type === 'epoch').map((r) => r.epoch)).toEqual([1, 2]);

    const ev = await cli('eval', ['--checkpoint', path.join(out, 'final.safetensors'), '--max-images', '2', '--json', '--visualize', '2']);
    const report = JSON.parse(ev.stdout.trim()) as { stats: Record<string, number>; results: string; images: number };
    expect(Object.keys(report.stats)).toEqual(['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl']);
    expect(report.images).toBe(2);
    const results = JSON.parse(fs.readFileSync(report.results, 'utf8')) as { image_id: number; category_id: number; bbox: number[]; score: number }[];
    for (const r of results.slice(0, 5)) {
      expect([1, 2, 3]).toContain(r.category_id);
      expect(r.bbox).toHaveLength(4);
    }
    expect(fs.readdirSync(path.join(out, 'eval_bccd_test_vis'))).toHaveLength(2);
    expect(() => loadDetector(path.join(out, 'missing.safetensors'))).toThrow(/missing\.safetensors does not exist/);
    expect(() => loadDetector(path.join(out, 'metrics.jsonl'))).toThrow(/metrics\.jsonl is not a readable safetensors file/);
  }, 300_000);
});
