/**
 * torchvision's own logits as the reference: the fixtures of @refconv/backbones
 * (packages/backbones/tools/make_fixtures.py: torchvision models with random weights, their
 * state dict and, for a fixed NCHW input, torchvision's logits) are imported with loadTorchWeights
 * (official-RefConv checkpoints are refocused on import), fused with BN folding, exported, and run
 * in onnxruntime-node on the same NCHW input: the logits must equal torchvision's to 1e-4 relative.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createModel, loadTorchWeights } from '@refconv/backbones';
import { fuse, readSafetensors } from '@refconv/core';
import { createSession, exportOnnx, runSession } from '../src/index.js';

const FIXTURES = path.join(import.meta.dirname, '..', '..', 'backbones', 'test', 'fixtures');
const cases = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'cases.json'), 'utf8')) as Record<string, { options: { arch: string } & Record<string, unknown>; weights: string; io: string }>;

describe('torchvision checkpoint -> loadTorchWeights -> fuse -> ONNX gives torchvision logits', () => {
  for (const [name, c] of Object.entries(cases)) {
    it(name, async () => {
      const { arch, ...opts } = c.options;
      const built = createModel(arch, opts as never);
      const { model } = loadTorchWeights(built, path.join(FIXTURES, c.weights));
      const fused = fuse(model, { foldBatchNorm: true });
      const io = readSafetensors(path.join(FIXTURES, c.io));
      const x = io.get('input_nchw')!;
      const want = io.get('logits')!;
      const session = await createSession(exportOnnx(fused));
      const out = await runSession(session, Float32Array.from(x.data as Float32Array), [...x.shape]);
      await session.release();
      expect(out.logits.dims).toEqual([...want.shape]);
      let num = 0;
      let den = 0;
      const w = want.data as Float32Array;
      for (let i = 0; i < w.length; i++) {
        num = Math.max(num, Math.abs(out.logits.data[i] - w[i]));
        den = Math.max(den, Math.abs(w[i]));
      }
      console.log(`torchvision ${name}: onnxruntime vs torchvision max rel err ${(num / den).toExponential(2)}`);
      expect(num / den).toBeLessThan(1e-4);
      for (const m of new Set([built, model, fused])) m.dispose();
    });
  }
});
