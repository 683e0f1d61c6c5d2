import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { encodeSafetensors, readSafetensors, refocusKernel, writeSafetensors } from '@refconv/core';
import { heatmapPng, heatmapSvg, kernelSkeletons, layerSkeleton, readConvKernels, skeletonRatio } from '../src/index.js';

/** [K,K,A,B] row-major kernel whose value at (y,x,a,b) is f(y,x,a,b). */
function makeKernel(k: number, a: number, b: number, f: (y: number, x: number, i: number, o: number) => number): Float32Array {
  const out = new Float32Array(k * k * a * b);
  for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) for (let i = 0; i < a; i++) for (let o = 0; o < b; o++) out[((y * k + x) * a + i) * b + o] = f(y, x, i, o);
  return out;
}

describe('kernel skeleton', () => {
  it('hand-made 3x3 kernels give the hand-computed grid', () => {
    // layer A: |w| = 2 at the centre, 1 on the cross arms, 0.5 at corners; signs alternate over channels
    const a = makeKernel(3, 2, 2, (y, x, i, o) => ((i + o) % 2 ? -1 : 1) * (y === 1 && x === 1 ? 2 : y === 1 || x === 1 ? 1 : 0.5));
    // layer B: a single non-zero entry, 4 at (0,0) in channel (0,0) and 1 at (2,2) in channel (1,1)
    const b = makeKernel(3, 2, 2, (y, x, i, o) => (y === 0 && x === 0 && i === 0 && o === 0 ? 4 : y === 2 && x === 2 && i === 1 && o === 1 ? 1 : 0));
    const la = layerSkeleton('a', [3, 3, 2, 2], a);
    expect(la.meanAbs).toEqual([0.5, 1, 0.5, 1, 2, 1, 0.5, 1, 0.5]);
    expect(la.normalized).toEqual([0.25, 0.5, 0.25, 0.5, 1, 0.5, 0.25, 0.5, 0.25]);
    const lb = layerSkeleton('b', [3, 3, 2, 2], b);
    expect(lb.meanAbs).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0.25]);
    expect(lb.normalized).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0.25]);
    const [s] = kernelSkeletons([
      { layer: 'a', kind: 'conv', shape: [3, 3, 2, 2], kernel: a },
      { layer: 'b', kind: 'conv', shape: [3, 3, 2, 2], kernel: b },
      { layer: 'pw', kind: 'conv', shape: [1, 1, 2, 2], kernel: new Float32Array(4).fill(1) },
    ]);
    expect(s!.k).toBe(3);
    expect(s!.layers).toBe(2); // the 1x1 conv is left out
    const want = [0.625, 0.25, 0.125, 0.25, 0.5, 0.25, 0.125, 0.25, 0.25];
    s!.grid.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 12));
    // cross = (0.25*4 + 0.5)/5 = 0.3; corners = (0.625 + 0.125 + 0.125 + 0.25)/4 = 0.28125
    expect(s!.skeletonRatio).toBeCloseTo(0.3 / 0.28125, 12);
  });

  it('an all-zero kernel normalises to zeros, not NaN; the ratio of a 1x1 grid is NaN', () => {
    expect(layerSkeleton('z', [3, 3, 1, 1], new Float32Array(9)).normalized).toEqual(new Array(9).fill(0));
    expect(skeletonRatio([1], 1)).toBeNaN();
  });

  it('reads plain, depthwise and RefConv kernels from a checkpoint; W_t is core.refocusKernel, delta is W_t - W_b', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'analysis-skel-'));
    const file = path.join(dir, 'ck.safetensors');
    const rnd = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i * 12.9898) * 0.5);
    const basis = rnd(3 * 3 * 2 * 4, 1);
    const transform = rnd(3 * 3 * 8, 2);
    writeSafetensors(file, {
      'c1/kernel': { shape: [3, 3, 1, 2], data: rnd(18, 3) },
      'dw/depthwise_kernel': { shape: [5, 5, 2, 1], data: rnd(50, 4) },
      'r/basis': { shape: [3, 3, 2, 4], data: basis },
      'r/transform': { shape: [3, 3, 8, 1], data: transform },
      'fc/kernel': { shape: [4, 10], data: rnd(40, 5) },
      '__optimizer__/momentum/c1/kernel': { shape: [3, 3, 1, 2], data: rnd(18, 6) },
      // a trained RefConv checkpoint (segment's last.safetensors) holds the transform's momentum, not the frozen basis'
      '__optimizer__/momentum/r/transform': { shape: [3, 3, 8, 1], data: rnd(72, 7) },
    });
    const ks = readConvKernels(file);
    expect(ks.map((k) => [k.layer, k.kind])).toEqual([['c1', 'conv'], ['dw', 'depthwise'], ['r', 'refconv']]);
    const wt = tf.tidy(() => refocusKernel(tf.tensor4d(basis, [3, 3, 2, 4]), tf.tensor4d(transform, [3, 3, 8, 1])).dataSync());
    expect(Array.from(ks[2]!.kernel)).toEqual(Array.from(wt));
    // the delta skeleton of the RefConv layer, against a plain loop over W_t - W_b
    const [d] = kernelSkeletons(ks, { field: 'delta' });
    expect(d!.layers).toBe(1);
    for (let p = 0; p < 9; p++) {
      let s = 0;
      for (let j = 0; j < 8; j++) s += Math.abs(wt[p * 8 + j]! - basis[p * 8 + j]!);
      expect(d!.perLayer[0]!.meanAbs[p]).toBeCloseTo(s / 8, 6);
    }
    expect(kernelSkeletons(ks).map((s) => [s.k, s.layers])).toEqual([[3, 2], [5, 1]]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a transform without a basis is an error naming the file and layer', () => {
    const bytes = encodeSafetensors({ 'x/transform': { shape: [3, 3, 1, 1], data: new Float32Array(9) } });
    expect(() => readConvKernels(readSafetensors(bytes), 'ck.safetensors')).toThrow(/ck.safetensors: 'x\/transform' has no matching basis/);
  });

  it('heatmap: one cell per value with its number; PNG written', async () => {
    const svg = heatmapSvg({ title: 't', panels: [{ title: 'a', k: 3, grid: [0, 0.1, 0.2, 0.3, 1, 0.5, 0.6, 0.7, 0.8] }] });
    expect(svg.match(/<rect x=/g)!.length).toBe(9);
    expect(svg).toContain('>1.00<');
    expect(() => heatmapSvg({ title: 't', panels: [{ title: 'a', k: 3, grid: [1] }] })).toThrow(/panel 'a' has 1 values, expected 3x3/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'analysis-hm-'));
    await heatmapPng(path.join(dir, 'h.png'), { title: 't', panels: [{ title: 'a', k: 3, grid: [0, 0.1, 0.2, 0.3, 1, 0.5, 0.6, 0.7, 0.8] }] });
    expect(fs.readFileSync(path.join(dir, 'h.png')).subarray(1, 4).toString()).toBe('PNG');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
