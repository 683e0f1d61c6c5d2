import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '@refconv/engine';
import { fgsm, inputBox, pgd, robustness } from '../src/index.js';
import { attacksFixture, fixtureBatch, fixtureModel } from './helpers/fixture-model.js';

const fx = attacksFixture;

describe('FGSM / PGD against PyTorch on a fixed-weight model', () => {
  const model = fixtureModel();
  const x = tf.tensor4d(fx.x, fx.shape);
  const y = tf.tensor1d(fx.labels, 'int32');
  const box = inputBox(fx.mean, fx.std);

  it('clean predictions match', () => {
    expect(Array.from((tf.argMax(model.predict(x) as tf.Tensor, 1)).dataSync())).toEqual(fx.cleanPred);
  });

  for (const a of fx.attacks) {
    it(`${a.kind} eps ${a.eps}${a.steps ? `, ${a.steps} steps of ${a.alpha}` : ''}: the adversarial images equal PyTorch's`, () => {
      const xa = a.kind === 'fgsm' ? fgsm(model, x, y, a.eps, box) : pgd(model, x, y, { eps: a.eps, steps: a.steps, alpha: a.alpha, box });
      const got = xa.dataSync();
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - a.x[i]));
      expect(worst).toBeLessThan(1e-4);
      expect(Array.from(tf.argMax(model.predict(xa) as tf.Tensor, 1).dataSync())).toEqual(a.pred);
      // the attack moved most values by the full step, so a wrong sign would show
      expect(tf.max(tf.abs(tf.sub(xa, x))).dataSync()[0]).toBeCloseTo(a.eps, 5);
      xa.dispose();
    });
  }

  it('PGD with a random start stays in the eps-ball and the image box; robustness() frees its tensors', () => {
    const xa = pgd(model, x, y, { eps: 0.2, steps: 3, box, randomStart: new Rng(1) });
    const d = tf.max(tf.abs(tf.sub(xa, x))).dataSync()[0]!;
    expect(d).toBeLessThanOrEqual(0.2 + 1e-6);
    const lo = tf.min(tf.sub(xa, tf.tensor1d(box.lo))).dataSync()[0]!;
    expect(lo).toBeGreaterThanOrEqual(-1e-6);
    xa.dispose();
    const batch = fixtureBatch();
    const before = tf.memory().numTensors;
    const r = robustness(model, batch, { eps: [0.1, 0.3], pgdSteps: 4, batchSize: 4, label: false });
    expect(tf.memory().numTensors).toBe(before);
    const cleanHits = fx.cleanPred.filter((p: number, i: number) => p === fx.labels[i]).length;
    expect(r.clean).toBeCloseTo((100 * cleanHits) / fx.shape[0], 6);
    const fg = fx.attacks.filter((a: { kind: string }) => a.kind === 'fgsm');
    r.fgsm.forEach((pt, i) => expect(pt.top1).toBeCloseTo((100 * fg[i].pred.filter((p: number, j: number) => p === fx.labels[j]).length) / fx.shape[0], 6));
    expect(() => fgsm(model, x, y, -1)).toThrow(/eps must be >= 0, got -1/);
  });
});
