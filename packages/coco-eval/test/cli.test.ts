import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseArgs, runCli } from '../src/cli.js';
import { FIX, fixture, maxAbsDiff, type RefEval } from './helpers.js';

const evals = fixture<Record<string, RefEval>>('synthetic_evals.json');
const BIN = fileURLToPath(new URL('../bin/coco-eval.js', import.meta.url));

describe('coco-eval CLI', () => {
  it('prints pycocotools table for bbox', async () => {
    const o = await parseArgs(['--gt', FIX + 'synthetic_gt.json', '--dt', FIX + 'synthetic_dt_bbox.json', '--iou-type', 'bbox']);
    const out: string[] = [];
    runCli(o, (s) => out.push(s), () => {});
    expect(out).toEqual(evals.bbox!.table);
  });
  it('--json prints one object whose stats are the 12 numbers', async () => {
    const o = await parseArgs(['--gt', FIX + 'synthetic_gt.json', '--dt', FIX + 'synthetic_dt_segm.json', '--iou-type', 'segm', '--json', '--per-category']);
    const out: string[] = [];
    runCli(o, (s) => out.push(s), () => {});
    expect(out).toHaveLength(1);
    const r = JSON.parse(out[0]!);
    expect(maxAbsDiff(r.stats, evals.segm!.stats)).toBeLessThanOrEqual(1e-12);
    expect(r.perCategory.map((c: any) => c.catId)).toEqual(evals.segm!.perCategory.map((c) => c.catId));
  });
  it('unknown options, a bad iou type and missing flags are rejected', async () => {
    await expect(parseArgs(['--gt', 'a', '--dt', 'b', '--iou-type', 'bbox', '--bogus'])).rejects.toThrow(/Unknown argument: bogus/);
    await expect(parseArgs(['--gt', 'a', '--dt', 'b', '--iou-type', 'oks'])).rejects.toThrow(/iou-type/);
    await expect(parseArgs(['--gt', 'a', '--iou-type', 'bbox'])).rejects.toThrow(/dt/);
  });
  it('the bin launcher runs the CLI and exits 1 with a clear message on a bad file', () => {
    const ok = spawnSync(process.execPath, [BIN, '--gt', FIX + 'synthetic_gt.json', '--dt', FIX + 'synthetic_dt_bbox.json', '--iou-type', 'bbox', '--json'], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(maxAbsDiff(JSON.parse(ok.stdout).stats, evals.bbox!.stats)).toBeLessThanOrEqual(1e-12);
    const bad = spawnSync(process.execPath, [BIN, '--gt', FIX + 'synthetic_gt.json', '--dt', FIX + 'nope.json', '--iou-type', 'bbox'], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/coco-eval: error: cannot read .*nope\.json/);
  });
});
