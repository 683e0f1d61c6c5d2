import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { createModel } from '@refconv/backbones';
import { refocus } from '@refconv/core';
import { inferThroughput, makeTrainStep, median, stealShare } from '../src/measure.js';

describe('benchmark steps', () => {
  it('a RefConv training step leaks no tensors over 50 steps and actually trains (bench:train checks 1,000)', () => {
    const model = refocus(createModel('cifar_resnet20', { inputSize: 8, numClasses: 3, width: 0.25 } as never), { seed: 1 });
    const step = makeTrainStep(model, 2);
    step.run();
    const before = tf.memory().numTensors;
    const w0 = model.trainableWeights[0].read().dataSync().slice();
    for (let i = 0; i < 50; i++) step.run();
    expect(tf.memory().numTensors).toBe(before);
    const w1 = model.trainableWeights[0].read().dataSync();
    expect(w1.some((v, i) => v !== w0[i])).toBe(true);
    step.dispose();
  });

  it('inference throughput is a positive rate and leaks nothing', () => {
    const model = createModel('mobilenet_v2_cifar', { inputSize: 8, numClasses: 3, width: 0.25 } as never);
    const before = tf.memory().numTensors;
    expect(inferThroughput(model, 2, 2)).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('statistics of the benchmark', () => {
  it('median of odd and even lists, unsorted input', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow(/empty/);
  });

  it('steal share from two /proc/stat cpu readings', () => {
    // user nice system idle iowait irq softirq steal guest guest_nice
    const before = [100, 0, 50, 800, 0, 0, 0, 10, 0, 0];
    const after = [300, 0, 100, 900, 0, 0, 0, 60, 0, 0];
    expect(stealShare(before, after)).toBeCloseTo(50 / 400, 12);
    expect(stealShare(null, after)).toBeNull();
  });
});
