/**
 * The committed fixture (tools/make-fixture.ts): onnxruntime-node reproduces the stored tfjs logits,
 * and the Python onnx checker accepts the file and Python onnxruntime agrees too. The Python is
 * DEPLOY_PYTHON, or the repository's reference environment (`.venv-ref`, created from the
 * machine's pip index by packages/bench/tools/setup-venv.sh on first use, as the benchmarks do).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { createSession, readOnnxMetadata, runSession } from '../src/index.js';

const dir = path.join(import.meta.dirname, 'fixtures');
const onnxFile = path.join(dir, 'mobilenet_v3_small.onnx');
const ioFile = path.join(dir, 'mobilenet_v3_small.json');
const io = JSON.parse(fs.readFileSync(ioFile, 'utf8')) as { dims: number[]; input: number[]; logits: number[] };

/** DEPLOY_PYTHON, or the reference venv's Python (set up on first use); throws with the setup's output when it cannot be made. */
function referencePython(): string {
  if (process.env.DEPLOY_PYTHON) return process.env.DEPLOY_PYTHON;
  const setup = path.join(import.meta.dirname, '..', '..', 'bench', 'tools', 'setup-venv.sh');
  const r = spawnSync('bash', [setup], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`could not set up the reference Python (${setup}): ${(r.stderr || r.stdout).trim().split('\n').slice(-5).join(' | ')}`);
  return r.stdout.trim().split('\n').pop()!;
}

describe('committed ONNX fixture', () => {
  let python = '';
  beforeAll(() => {
    python = referencePython();
  });

  it('onnxruntime-node gives the stored tfjs logits (1e-4 relative) and the metadata reads back', async () => {
    const session = await createSession(onnxFile);
    const out = await runSession(session, Float32Array.from(io.input), io.dims);
    expect(out.logits.dims).toEqual([2, 5]);
    let num = 0;
    let den = 0;
    io.logits.forEach((v, i) => {
      num = Math.max(num, Math.abs(out.logits.data[i] - v));
      den = Math.max(den, Math.abs(v));
    });
    expect(num / den).toBeLessThan(1e-4);
    await session.release();
    expect(readOnnxMetadata(fs.readFileSync(onnxFile))).toMatchObject({ arch: 'mobilenet_v3_small', inputSize: [32, 32], classNames: ['a', 'b', 'c', 'd', 'e'] });
  });

  it('passes the Python onnx checker and Python onnxruntime agrees (tools/check_onnx.py)', () => {
    const r = spawnSync(python, [path.join(import.meta.dirname, '..', 'tools', 'check_onnx.py'), onnxFile, ioFile], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ok: boolean; opset: number; max_rel_err: number };
    expect(res.opset).toBe(17);
    expect(res.max_rel_err).toBeLessThan(1e-4);
  });
});
