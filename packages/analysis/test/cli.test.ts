import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBaseline, refocusModel, type ModelSpec } from '@refconv/classify';
import { modelWeights, saveCheckpoint } from '@refconv/engine';

const PKG = fileURLToPath(new URL('..', import.meta.url));

function run(args: string[]) {
  return spawnSync(process.execPath, ['--conditions=@refconv/source', '--import', 'tsx', 'src/cli/run.ts', ...args], { cwd: PKG, encoding: 'utf8', env: { ...process.env, REFCONV_USER_CWD: PKG } });
}

describe('analysis:run CLI', () => {
  it('runs every analysis on a baseline and a RefConv classify checkpoint and writes report.md, results.json and the figures', { timeout: 300_000 }, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'analysis-cli-'));
    const spec: ModelSpec = { arch: 'cifar_resnet20', numClasses: 10, inputSize: 28, inChannels: 1, width: 0.25 };
    const base = buildBaseline(spec, 0);
    const refSpec = { mapK: 3, grouping: 'official' as const, init: 'default' as const, frozen: 'official' as const };
    const ref = refocusModel(base, refSpec, 1);
    saveCheckpoint(path.join(dir, 'base.safetensors'), { weights: modelWeights(base), state: { epoch: 0, step: 0, model: { ...spec } } });
    saveCheckpoint(path.join(dir, 'ref.safetensors'), { weights: modelWeights(ref), state: { epoch: 0, step: 0, model: { ...spec, refocus: refSpec } } });
    base.dispose();
    ref.dispose();
    const out = path.join(dir, 'out');
    const r = run(['--models', `base=${path.join(dir, 'base.safetensors')}`, `ref=${path.join(dir, 'ref.safetensors')}`, '--data', 'fashion-mnist', '--images', '6', '--attack-images', '6', '--eps', '0.05', '--pgd-steps', '2',
      '--landscape-images', '6', '--grid', '3', '--interp-points', '3', '--out', out, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop()!);
    expect(json.skeleton.map((m: { name: string; refconvLayers: number }) => [m.name, m.refconvLayers > 0])).toEqual([['base', false], ['ref', true]]);
    expect(json.redundancy.models[1].layers.length).toBeGreaterThan(5);
    expect(json.robustness.models[0].fgsm[0].eps).toBe(0.05);
    expect(json.landscape.surfaces[1].loss.length).toBe(3);
    expect(json.landscape.interpolations[0].to).toBe('ref');
    for (const f of ['report.md', 'results.json', 'skeleton-k3.png', 'skeleton-delta-k3.png', 'redundancy-kl.png', 'robustness.png', 'landscape-2d.png', 'interpolation.png']) {
      expect(fs.existsSync(path.join(out, f)), f).toBe(true);
    }
    expect(fs.readFileSync(path.join(out, 'report.md'), 'utf8')).toMatch(/## Kernel skeletons[\s\S]*## Channel redundancy[\s\S]*## Adversarial robustness[\s\S]*## Loss landscape/);
    // errors: a missing checkpoint names the file (exit 1); no --models is a usage error (exit 2)
    const missing = run(['--models', `x=${path.join(dir, 'nope.safetensors')}`, '--out', out]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/nope\.safetensors/);
    expect(run(['--out', out]).status).toBe(2);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  it('several seeds per model (name=a,b): one run per seed and the mean ± std; the kernel analyses on a non-classify checkpoint', { timeout: 120_000 }, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'analysis-cli-'));
    const spec: ModelSpec = { arch: 'cifar_resnet20', numClasses: 10, inputSize: 28, inChannels: 1, width: 0.25 };
    const refSpec = { mapK: 3, grouping: 'official' as const, init: 'default' as const, frozen: 'official' as const };
    const files: string[] = [];
    for (const seed of [0, 1]) {
      const base = buildBaseline(spec, seed);
      const ref = refocusModel(base, refSpec, seed + 10);
      files.push(path.join(dir, `base${seed}.safetensors`), path.join(dir, `ref${seed}.safetensors`));
      // saved without a classify model description, as a segment / detect checkpoint would be
      saveCheckpoint(files[files.length - 2]!, { weights: modelWeights(base), state: { epoch: 0, step: 0 } });
      saveCheckpoint(files[files.length - 1]!, { weights: modelWeights(ref), state: { epoch: 0, step: 0 } });
      base.dispose();
      ref.dispose();
    }
    const out = path.join(dir, 'out');
    const r = run(['--models', `base=${files[0]},${files[2]}`, `ref=${files[1]},${files[3]}`, '--analyses', 'skeleton', 'weights', '--out', out, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop()!);
    expect(json.runs.map((x: { label: string }) => x.label)).toEqual(['run-0', 'run-1']);
    // the aggregate is the mean and sample std of the two runs' own values
    const v = json.runs.map((x: { weights: { models: Array<{ mean: number }> } }) => x.weights.models[1]!.mean);
    const s = json.aggregate.summary.ref['weight |cos| (checkpoint)'];
    expect(s.values).toEqual(v);
    expect(s.mean).toBeCloseTo((v[0] + v[1]) / 2, 12);
    expect(s.std).toBeCloseTo(Math.abs(v[0] - v[1]) / Math.SQRT2, 12);
    expect(json.aggregate.summary.ref['delta ratio k3'].n).toBe(2);
    for (const f of ['report.md', 'results.json', 'run-0/report.md', 'run-1/skeleton-k3.png', 'run-1/weights-cos.png']) expect(fs.existsSync(path.join(out, f)), f).toBe(true);
    expect(fs.readFileSync(path.join(out, 'report.md'), 'utf8')).toMatch(/Mean ± std over 2 runs[\s\S]*\| weight \\\|cos\\\| \(checkpoint\) \| [0-9.]+ ± [0-9.]+ \|/);
    // earlier runs' results.json aggregated without recomputing: the same summary
    const again = run(['--results', path.join(out, 'run-0', 'results.json'), path.join(out, 'run-1', 'results.json'), '--reference', 'base', '--out', path.join(dir, 'out2'), '--json']);
    expect(again.status, again.stderr).toBe(0);
    const json2 = JSON.parse(again.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop()!);
    expect(json2.aggregate).toEqual(json.aggregate);
    // --reference base: the paired differences ref - base, run by run
    const vb = json.runs.map((x: { weights: { models: Array<{ mean: number }> } }) => x.weights.models[0]!.mean);
    expect(json2.differences.reference).toBe('base');
    json2.differences.summary['ref - base']['weight |cos| (checkpoint)'].values.forEach((d: number, i: number) => expect(d).toBeCloseTo(v[i] - vb[i], 12));
    expect(fs.readFileSync(path.join(dir, 'out2', 'report.md'), 'utf8')).toContain('## Paired differences to base');
    const notRun = run(['--results', path.join(out, 'results.json'), '--out', path.join(dir, 'out3')]);
    expect(notRun.status).toBe(1);
    expect(notRun.stderr).toMatch(/out\/results\.json: holds several runs already/);
    // the data-dependent analyses need classify checkpoints: the error names the model and file
    const bad = run(['--models', `base=${files[0]}`, '--analyses', 'redundancy', '--out', out]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/model 'base' \(.*base0\.safetensors\).*need a @refconv\/classify checkpoint/);
    // different numbers of checkpoints per model: refused naming them
    const mismatch = run(['--models', `base=${files[0]},${files[2]}`, `ref=${files[1]},${files[3]},${files[3]}`, '--analyses', 'skeleton', '--out', out]);
    expect(mismatch.status).toBe(1);
    expect(mismatch.stderr).toMatch(/base: 2, ref: 3/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
