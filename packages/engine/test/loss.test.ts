import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { crossEntropy, topkCorrect } from '../src/loss.js';

describe('crossEntropy', () => {
  it('equals -log softmax of the true class without smoothing (hand-computed)', () => {
    // logits [0, ln 2, ln 3] -> softmax [1/6, 2/6, 3/6]
    const logits = tf.tensor2d([[0, Math.log(2), Math.log(3)], [0, Math.log(2), Math.log(3)]]);
    const loss = crossEntropy(logits, tf.tensor1d([2, 0], 'int32'));
    expect(loss.dataSync()[0]).toBeCloseTo((-Math.log(0.5) - Math.log(1 / 6)) / 2, 5);
  });

  it('applies label smoothing as (1 - eps) * nll + eps * mean(-log p)', () => {
    const logits = tf.tensor2d([[0, Math.log(2), Math.log(3)]]);
    const eps = 0.1;
    const logp = [Math.log(1 / 6), Math.log(2 / 6), Math.log(3 / 6)];
    // target distribution: eps/3 everywhere plus (1 - eps) on class 1
    const target = [eps / 3, 1 - eps + eps / 3, eps / 3];
    const expected = -target.reduce((s, t, i) => s + t * logp[i]!, 0);
    expect(crossEntropy(logits, tf.tensor1d([1], 'int32'), eps).dataSync()[0]).toBeCloseTo(expected, 5);
  });

  it('rejects mismatched shapes', () => {
    expect(() => crossEntropy(tf.zeros([2, 3]) as tf.Tensor2D, tf.tensor1d([0, 1, 2], 'int32'))).toThrow(/labels must be \[B=2\]/);
  });
});

describe('topkCorrect', () => {
  it('counts labels among the k highest logits', () => {
    const logits = tf.tensor2d([
      [0.1, 0.5, 0.2, 0.9], // order 3,1,2,0
      [0.8, 0.1, 0.3, 0.0], // order 0,2,1,3
    ]);
    expect(topkCorrect(logits, [3, 2], 1)).toBe(1);
    expect(topkCorrect(logits, [3, 2], 2)).toBe(2);
    expect(topkCorrect(logits, [0, 3], 3)).toBe(0);
    expect(topkCorrect(logits, [0, 3], 4)).toBe(2);
  });
});
