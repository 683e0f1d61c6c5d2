/**
 * `classify:experiment --archs a,b` run here (the launcher's grid, local): each architecture's
 * folder `<out>/<arch>/` holds exactly what `--arch <arch> --out <out>/<arch>` writes (same files,
 * same results.json numbers as that separate run), and `<out>/report.md` / `results.json` hold
 * every architecture's mean top-1 as computed from its own results.json.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from './helpers.js';

const PKG = path.resolve(import.meta.dirname, '..');
const OPTS = ['--width', '0.25', '--train-limit', '32', '--val-limit', '20', '--batch-size', '16', '--epochs', '1', '--finetune-epochs', '1', '--num-seeds', '2', '--latency-runs', '1', '--workers', '0'];
// asynchronous, so that the test worker stays responsive while the CLI trains
const cli = (args: string[]) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, ['--conditions=@refconv/source', '--import', 'tsx', 'src/cli/experiment.ts', ...args], { cwd: PKG, stdio: ['ignore', 'pipe', 'pipe'] });
    let [stdout, stderr] = ['', ''];
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (status) => resolve({ status, stdout, stderr }));
  });

interface Results {
  config: { arch: string; out: string };
  results: Array<{ seed: number; models: Record<string, { top1: number; top5: number; loss: number }>; histories: Record<string, Array<{ trainLoss: number }>> }>;
}
const read = <T>(f: string) => JSON.parse(fs.readFileSync(f, 'utf8')) as T;
const numbers = (r: Results) => r.results.map((s) => ({ seed: s.seed, models: s.models && Object.fromEntries(Object.entries(s.models).map(([k, m]) => [k, [m.top1, m.top5, m.loss]])), losses: Object.values(s.histories).map((h) => h.map((e) => e.trainLoss)) }));
const files = (d: string) => fs.readdirSync(d, { recursive: true, encoding: 'utf8' }).filter((f) => !f.endsWith('.png')).sort();

describe('classify:experiment --archs (local grid)', () => {
  it('<out>/<arch> is what a single --arch run writes; the grid report covers every architecture', async () => {
    const root = tmpDir('classify-grid-');
    const grid = path.join(root, 'grid');
    const g = await cli([...OPTS, '--archs', 'cifar_resnet20,cifar_resnet56', '--out', grid]);
    expect(g.status, g.stderr).toBe(0);
    expect(g.stdout).toContain(`grid report: ${path.join(grid, 'report.md')}`);
    const single = path.join(root, 'single');
    const s = await cli([...OPTS, '--arch', 'cifar_resnet56', '--out', single]);
    expect(s.status, s.stderr).toBe(0);

    const arch56 = path.join(grid, 'cifar_resnet56');
    expect(files(arch56)).toEqual(files(single));
    const [a, b] = [read<Results>(path.join(arch56, 'results.json')), read<Results>(path.join(single, 'results.json'))];
    expect(numbers(a)).toEqual(numbers(b));
    expect(a.config.arch).toBe('cifar_resnet56');

    const top = read<{ archs: Array<{ arch: string; models: Record<string, { top1: { mean: number; n: number } }> }> }>(path.join(grid, 'results.json'));
    expect(top.archs.map((x) => x.arch)).toEqual(['cifar_resnet20', 'cifar_resnet56']);
    for (const x of top.archs) {
      const own = read<Results>(path.join(grid, x.arch, 'results.json'));
      for (const kind of ['baseline', 'control', 'refconv', 'fused']) {
        const v = own.results.map((r) => r.models[kind]!.top1);
        expect(x.models[kind]!.top1.n, `${x.arch} ${kind}`).toBe(2);
        expect(x.models[kind]!.top1.mean, `${x.arch} ${kind}`).toBeCloseTo((v[0]! + v[1]!) / 2, 10);
      }
    }
    const md = fs.readFileSync(path.join(grid, 'report.md'), 'utf8');
    expect(md).toMatch(/^\| `cifar_resnet20` \| [\d.]+ ± [\d.]+ \(2\) \|/m);
    expect(md).toContain('[report](cifar_resnet56/report.md)');
  }, 240_000);
});
