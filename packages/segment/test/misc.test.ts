import { mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { newestCheckpoint, parseSize } from '../src/cli/common.js';
import { readRgb } from '../src/data/io.js';
import { trainAugment } from '../src/data/transforms.js';
import { enableDilatedConvGradients } from '@refconv/core';

describe('augmentation without randomness is the identity', () => {
  it('scale 1, crop = image, no flip: image normalised, mask unchanged', async () => {
    const w = 7;
    const h = 5;
    const img = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37) % 256);
    const mask = Uint8Array.from({ length: w * h }, (_, i) => i % 11);
    const ex = await trainAugment({ width: w, height: h, data: img }, { width: w, height: h, data: mask },
      { cropSize: [h, w], scaleRange: [1, 1], flip: false, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }, () => 0);
    expect(Array.from(ex.mask)).toEqual(Array.from(mask));
    ex.image.forEach((v, i) => expect(v).toBeCloseTo((img[i]! / 255 - 0.5) / 0.25, 5));
  });
});

describe('bad input', () => {
  it('a corrupt image is an error naming the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'badimg-'));
    writeFileSync(join(dir, 'x.jpg'), 'not a jpeg');
    await expect(readRgb(join(dir, 'x.jpg'))).rejects.toThrow(/cannot decode image .*x\.jpg/);
  });
  it('sizes parse as N or HxW', () => {
    expect(parseSize('180x240', 'crop')).toEqual([180, 240]);
    expect(parseSize(512, 'crop')).toEqual([512, 512]);
    expect(() => parseSize('12by3', 'crop')).toThrow(/--crop must be N or HxW/);
  });
  it('newestCheckpoint picks the most recently written checkpoint', () => {
    const dir = mkdtempSync(join(tmpdir(), 'runs-'));
    mkdirSync(join(dir, 'a'));
    mkdirSync(join(dir, 'b'));
    writeFileSync(join(dir, 'a', 'last.safetensors'), '');
    writeFileSync(join(dir, 'b', 'last.safetensors'), '');
    utimesSync(join(dir, 'a', 'last.safetensors'), new Date(2000, 1, 1), new Date(2000, 1, 1));
    expect(newestCheckpoint(dir)).toBe(join(dir, 'b', 'last.safetensors'));
    expect(newestCheckpoint(join(dir, 'none'))).toBeUndefined();
  });
});

describe('dilated Conv2D layer (fused path) gradient values', () => {
  it('equal those of tf.conv2d with the explicit zero-inserted kernel plus bias', () => {
    enableDilatedConvGradients();
    const layer = tf.layers.conv2d({ filters: 2, kernelSize: 3, dilationRate: 2, padding: 'same', useBias: true, kernelInitializer: 'glorotNormal' });
    const x = tf.randomNormal([1, 9, 8, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    layer.apply(x);
    const [kernel, bias] = layer.getWeights() as [tf.Tensor4D, tf.Tensor1D];
    const up = tf.randomNormal([1, 9, 8, 2], 0, 1, 'float32', 4);
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, up)) as tf.Scalar);
    const gk = Object.entries(grads).find(([k]) => k.includes('kernel'))![1];
    // reference: explicit 5x5 kernel with zeros between taps, no dilation
    const big = tf.buffer([5, 5, 3, 2]);
    const kv = kernel.arraySync();
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let c = 0; c < 3; c++) for (let o = 0; o < 2; o++) big.set(kv[i]![j]![c]![o]!, 2 * i, 2 * j, c, o);
    const [gBig] = tf.grads((b: tf.Tensor) => tf.sum(tf.mul(tf.add(tf.conv2d(x, b as tf.Tensor4D, 1, 'same'), bias), up)))([big.toTensor()]);
    const taps = tf.stridedSlice(gBig!, [0, 0, 0, 0], [5, 5, 3, 2], [2, 2, 1, 1]);
    expect(tf.max(tf.abs(tf.sub(gk, taps))).dataSync()[0]).toBeLessThan(1e-4);
  });
});
