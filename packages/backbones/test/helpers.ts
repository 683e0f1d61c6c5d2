import * as path from 'node:path';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { readSafetensors } from '@refconv/core';
import type { CreateModelOptions } from '../src/index.js';

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

export interface FixtureCase {
  options: CreateModelOptions & { arch: string };
  weights: string;
  io: string;
  features: boolean;
}

export function loadCases(): Record<string, FixtureCase> {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, 'cases.json'), 'utf8')) as Record<string, FixtureCase>;
}

/** Reads a float tensor from a safetensors file, NCHW arrays converted to NHWC. */
export function readTensor(file: string, key: string, nchwToNhwc = false): tf.Tensor {
  const t = readSafetensors(path.join(FIXTURES, file)).get(key);
  if (!t) throw new Error(`${file}: no tensor '${key}'`);
  const x = tf.tensor(t.data as Float32Array, t.shape);
  if (!nchwToNhwc) return x;
  const y = tf.transpose(x, [0, 2, 3, 1]);
  x.dispose();
  return y;
}

/** max |a - b| / max |b|: relative error against the reference b. */
export function relativeError(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => {
    if (a.shape.join() !== b.shape.join()) throw new Error(`shape mismatch: [${a.shape}] vs reference [${b.shape}]`);
    const diff = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!;
    const scale = tf.max(tf.abs(b)).dataSync()[0]!;
    return diff / scale;
  });
}

/**
 * Lets the event loop run I/O between tests. Vitest's worker talks to the main process over IPC
 * with a 60 s reply timeout; long stretches of synchronous tfjs work (several tests in a row on a
 * loaded machine) never reach the poll phase and trip that timeout. Use as `afterEach(yieldToEventLoop)`.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** The four C2..C5 feature maps of a features model match the fixture's (NCHW there), each within `tol`. */
export function expectFixtureFeatures(outs: tf.Tensor[], io: string, tol: number): void {
  expect(outs.length).toBe(4);
  outs.forEach((o, i) => {
    const want = readTensor(io, `C${i + 2}`, true);
    expect(relativeError(o, want), `C${i + 2}`).toBeLessThan(tol);
    want.dispose();
  });
}
