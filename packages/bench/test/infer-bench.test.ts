/**
 * bench:infer end to end on a small configuration (no PyTorch): every runtime of ours produces a
 * rate and a latency, and the compiled graphs passed their check against the eager model.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const pkg = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

describe('bench:infer', () => {
  it('measures tfjs eager / graph / graph RefConv and onnxruntime on our export, writing JSON', () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'infer-bench-')), 'r.json');
    const stdout = execFileSync(process.execPath, ['--conditions=@refconv/source', '--import', 'tsx', 'src/infer-bench.ts',
      '--archs', 'mobilenet_v3_small', '--sizes', '32', '--batch', '4', '--rounds', '1', '--latency-runs', '2', '--no-torch', '--json', out], { cwd: pkg, encoding: 'utf8' });
    expect(stdout).toMatch(/throughput, images\/s at batch 4/);
    const r = JSON.parse(fs.readFileSync(out, 'utf8')) as { rows: { throughput: Record<string, number>; latencyMs: Record<string, number>; verification: string[] }[] };
    expect(r.rows).toHaveLength(1);
    for (const w of ['tfjsEager', 'tfjsGraph', 'tfjsGraphRefconv', 'ortOurs']) {
      expect(r.rows[0]!.throughput[w], w).toBeGreaterThan(0);
      expect(r.rows[0]!.latencyMs[w], w).toBeGreaterThan(0);
    }
    expect(r.rows[0]!.verification.join(' ')).toMatch(/plain: graph vs eager max relative error .*RefConv: graph vs eager max relative error/);
  });

  it('rejects bad options with a clear message', () => {
    expect(() => execFileSync(process.execPath, ['--conditions=@refconv/source', '--import', 'tsx', 'src/infer-bench.ts', '--sizes', '8', '--no-torch'], { cwd: pkg, encoding: 'utf8', stdio: 'pipe' }))
      .toThrow(/--sizes: integers >= 32 expected, got '8'/);
  });
});
