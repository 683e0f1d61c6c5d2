/**
 * The committed fixture (tools/make-fixture.ts): onnxruntime-node reproduces the stored tfjs logits,
 * and, where a Python with `onnx` + `onnxruntime` is available (DEPLOY_PYTHON, default
 * /tmp/venv-onnx/bin/python), the onnx checker accepts the file and Python onnxruntime agrees too.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { createSession, readOnnxMetadata, runSession } from '../src/index.js';

const dir = path.join(import.meta.dirname, 'fixtures');
const onnxFile = path.join(dir, 'mobilenet_v3_small.onnx');
const ioFile = path.join(dir, 'mobilenet_v3_small.json');
const io = JSON.parse(fs.readFileSync(ioFile, 'utf8')) as { dims: number[]; input: number[]; logits: number[] };
const python = process.env.DEPLOY_PYTHON ?? '/tmp/venv-onnx/bin/python';
const hasPython = fs.existsSync(python) && spawnSync(python, ['-c', 'import onnx, onnxruntime, numpy']).status === 0;

describe('committed ONNX fixture', () => {
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

  it.skipIf(!hasPython)('passes the Python onnx checker and Python onnxruntime agrees (tools/check_onnx.py)', () => {
    const r = spawnSync(python, [path.join(import.meta.dirname, '..', 'tools', 'check_onnx.py'), onnxFile, ioFile], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ok: boolean; opset: number; max_rel_err: number };
    expect(res.opset).toBe(17);
    expect(res.max_rel_err).toBeLessThan(1e-4);
  });
});
