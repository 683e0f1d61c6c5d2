import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '@refconv/engine';
import { filterNormalize, interpolate, lossAndAccuracy, randomDirection, surface2d, weightArrays, withWeights } from '../src/index.js';
import { fixtureBatch, fixtureModel } from './helpers/fixture-model.js';

/** Made by tools/make_fixtures.py: Li et al.'s normalisation and the loss at (a, b), in PyTorch. */
const lx = JSON.parse(fs.readFileSync(new URL('./fixtures/landscape.json', import.meta.url), 'utf8'));

const closeArrays = (got: ArrayLike<number>, want: ArrayLike<number>, tol: number) => {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / (1e-6 + Math.abs(want[i]!)));
  expect(worst).toBeLessThan(tol);
};

/** The fixture's normalised directions in model.weights order (BN moving statistics: 0). */
function fixtureDirections(model: tf.LayersModel): [Float32Array[], Float32Array[]] {
  return [0, 1].map((k) => model.weights.map((w) => (lx.directionsNormalized[k][w.originalName] ? Float32Array.from(lx.directionsNormalized[k][w.originalName]) : new Float32Array(w.shape.reduce((a: number, b) => a * (b as number), 1))))) as [Float32Array[], Float32Array[]];
}

describe('loss landscape (Li et al. 2018) against PyTorch', () => {
  it('filter normalisation equals the PyTorch implementation of net_plotter.normalize_direction', () => {
    const model = fixtureModel();
    for (const k of [0, 1]) {
      for (const w of model.weights) {
        const raw = lx.directionsRaw[k][w.originalName];
        if (!raw) continue;
        const got = filterNormalize(Float32Array.from(raw), w.read().dataSync() as Float32Array, w.shape as number[]);
        closeArrays(got, lx.directionsNormalized[k][w.originalName], 1e-5);
      }
    }
  });

  it('the loss at theta + a d1 + b d2 (BN in inference mode) equals PyTorch; surface2d puts a on columns, b on rows', () => {
    const model = fixtureModel();
    const batch = fixtureBatch();
    const dirs = fixtureDirections(model);
    const base = weightArrays(model);
    for (const p of lx.points) {
      const r = withWeights(model, base, [[p.a, dirs[0]], [p.b, dirs[1]]], () => lossAndAccuracy(model, batch, 4));
      expect(r.loss).toBeCloseTo(p.loss, 4);
      expect(r.top1).toBeCloseTo(p.top1, 6);
    }
    const s = surface2d(model, batch, { points: 3, range: 1, directions: dirs, label: false, angles: 4, radius: 0.5 });
    expect(s.coords).toEqual([-1, 0, 1]);
    expect(s.center).toBeCloseTo(lx.points[0].loss, 4);
    expect(s.loss[1]![1]).toBeCloseTo(lx.points[0].loss, 4);
    expect(s.loss[0]![2]).toBeCloseTo(lx.points.find((p: { a: number; b: number }) => p.a === 1 && p.b === -1).loss, 4);
    // the weights are restored afterwards
    weightArrays(model).forEach((w, i) => expect(Array.from(w)).toEqual(Array.from(base[i]!)));
  });

  it('randomDirection: filter norms equal the weights\', biases / BN / moving statistics zero; seeded', () => {
    const model = fixtureModel();
    const d = randomDirection(model, new Rng(3));
    model.weights.forEach((w, i) => {
      if (w.shape.length <= 1) { expect(d[i]!.every((v) => v === 0)).toBe(true); return; }
      const f = w.shape[w.shape.length - 1]!;
      const wv = w.read().dataSync();
      for (let j = 0; j < f; j++) {
        let dn = 0, wn = 0;
        for (let r = 0; r < wv.length / f; r++) { dn += d[i]![r * f + j]! ** 2; wn += wv[r * f + j]! ** 2; }
        expect(Math.sqrt(dn)).toBeCloseTo(Math.sqrt(wn), 5);
      }
    });
    expect(randomDirection(model, new Rng(3))).toEqual(d);
  });

  it('interpolate: alpha 0 and 1 give the two models\' losses; mismatched models are refused; no tensor leaks', () => {
    const a = fixtureModel();
    const b = fixtureModel();
    const batch = fixtureBatch();
    const [d1] = fixtureDirections(b);
    withWeights(b, weightArrays(b), [[0.7, d1]], () => {
      const before = tf.memory().numTensors;
      const pts = interpolate(a, b, batch, [0, 0.5, 1], false);
      expect(tf.memory().numTensors).toBe(before);
      expect(pts[0]!.loss).toBeCloseTo(lossAndAccuracy(a, batch).loss, 5);
      expect(pts[2]!.loss).toBeCloseTo(lossAndAccuracy(b, batch).loss, 5);
      expect(pts[0]!.loss).not.toBeCloseTo(pts[2]!.loss, 2);
    });
    const input = tf.input({ shape: [6, 6, 2] });
    const other = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 3, name: 'fc' }).apply(tf.layers.flatten().apply(input)) as tf.SymbolicTensor });
    expect(() => interpolate(a, other, batch, [0], false)).toThrow(/interpolate: the models differ: 'conv\/kernel' missing in the second model/);
    const before = tf.memory().numTensors;
    surface2d(a, batch, { points: 2, label: false, angles: 2 });
    expect(tf.memory().numTensors).toBe(before);
  });
});
