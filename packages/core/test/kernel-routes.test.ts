/**
 * The routes the kernel self-check can switch a kernel class to (1x1 convs as MatMul, gradients on
 * TF's EXPLICIT-padding Eigen kernels), against naive loops, and applyKernelPlan: that a routed
 * class really runs on its route (the native ops called) and gives the same numbers.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { activeKernelRoutes, applyKernelPlan, conv2dInputGradientExplicit } from '../src/fast-kernels.js';
import { pointwiseConv, pointwiseFilterGradient, pointwiseInputGradient } from '../src/kernels/pointwise-matmul.js';
import { maxRelErr, naiveConv, naiveConvGradients, randomArray } from './naive.js';

/** HWIO [1, 1, I, O] and OIHW hold the same numbers in different orders: naiveConv takes OIHW. */
function hwioToOihw(w: Float32Array, k: number, i: number, o: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) for (let a = 0; a < i; a++) for (let b = 0; b < o; b++)
    out[((b * i + a) * k + y) * k + x] = w[((y * k + x) * i + a) * o + b];
  return out;
}

describe('1x1 convs as MatMul', () => {
  for (const c of [{ h: 7, w: 5, s: 1 }, { h: 7, w: 7, s: 2 }, { h: 8, w: 6, s: 2 }, { h: 9, w: 9, s: 3 }]) {
    it(`forward, input and filter gradient match naive loops: ${c.h}x${c.w}, stride ${c.s}`, () => {
      const [n, cin, cout] = [2, 5, 3];
      const xs = randomArray(n * c.h * c.w * cin, 1);
      const ws = randomArray(cin * cout, 2);
      const x = tf.tensor4d(xs, [n, c.h, c.w, cin]);
      const w = tf.tensor4d(ws, [1, 1, cin, cout]);
      const ref = naiveConv(xs, [n, c.h, c.w, cin], hwioToOihw(ws, 1, cin, cout), cout, 1, 1, c.s, 1, 'same');
      const y = pointwiseConv(x, w, [c.s, c.s]);
      expect(y.shape).toEqual(ref.shape);
      expect(maxRelErr(y.dataSync(), ref.data)).toBeLessThan(1e-5);
      const dys = randomArray(ref.data.length, 3);
      const dy = tf.tensor4d(dys, ref.shape as [number, number, number, number]);
      const g = naiveConvGradients(xs, [n, c.h, c.w, cin], ws, cout, 1, c.s, 'same', dys);
      expect(maxRelErr(pointwiseInputGradient(dy, w, x.shape, [c.s, c.s]).dataSync(), g.dx)).toBeLessThan(1e-5);
      expect(maxRelErr(pointwiseFilterGradient(x, dy, [c.s, c.s]).dataSync(), g.dw)).toBeLessThan(1e-5);
      tf.dispose([x, w, y, dy]);
    });
  }
});

describe("input gradient on TF's EXPLICIT-padding kernel", () => {
  for (const c of [{ k: 3, s: 1, pad: 'same' as const }, { k: 3, s: 2, pad: 'same' as const }, { k: 1, s: 2, pad: 'same' as const }, { k: 3, s: 2, pad: 'valid' as const }, { k: 7, s: 2, pad: 'same' as const }]) {
    it(`matches a naive loop: k ${c.k}, stride ${c.s}, ${c.pad}`, () => {
      const [n, h, cin, cout] = [2, 9, 4, 3];
      const xs = randomArray(n * h * h * cin, 4);
      const ws = randomArray(c.k * c.k * cin * cout, 5);
      const y = tf.conv2d(tf.tensor4d(xs, [n, h, h, cin]), tf.tensor4d(ws, [c.k, c.k, cin, cout]), c.s, c.pad);
      const dys = randomArray(y.size, 6);
      const g = naiveConvGradients(xs, [n, h, h, cin], ws, cout, c.k, c.s, c.pad, dys);
      const dx = conv2dInputGradientExplicit(tf.tensor4d(dys, y.shape), tf.tensor4d(ws, [c.k, c.k, cin, cout]), [n, h, h, cin], [c.s, c.s], c.pad);
      expect(maxRelErr(dx.dataSync(), g.dx)).toBeLessThan(1e-5);
    });
  }
});

/** Native ops (name, first input's shape, padding attribute) that `f` ran. */
function nativeOps<T>(f: () => T): { result: T; ops: Array<{ name: string; shapes: number[][]; padding?: unknown }> } {
  const backend = tf.backend() as unknown as { executeSingleOutput: (name: string, attrs: Array<{ name: string; value: unknown }>, inputs: tf.Tensor[]) => unknown };
  const ops: Array<{ name: string; shapes: number[][]; padding?: unknown }> = [];
  const orig = backend.executeSingleOutput;
  backend.executeSingleOutput = function (name, attrs, inputs) {
    ops.push({ name, shapes: inputs.map((t) => t.shape), padding: attrs.find((a) => a.name === 'padding')?.value });
    return orig.call(this, name, attrs, inputs);
  };
  try {
    return { result: f(), ops };
  } finally {
    backend.executeSingleOutput = orig;
  }
}

describe('applyKernelPlan routes kernel classes away from their native kernel', async () => {
  const info = await initBackend();
  const hostPlan = info.kernelPlan ?? { routes: {}, eigenFilterGradient: false };
  afterAll(() => applyKernelPlan(hostPlan));

  /** A 1x1 strided conv, a 3x3 conv and a 1x1 conv with bias + ReLU (tfjs' fused conv), with gradients. */
  function step() {
    const layers = [
      tf.layers.conv2d({ inputShape: [9, 9, 6], filters: 8, kernelSize: 1, strides: 2, useBias: false }),
      tf.layers.conv2d({ filters: 5, kernelSize: 3, padding: 'same', useBias: false }),
      tf.layers.conv2d({ filters: 4, kernelSize: 1, activation: 'relu' }),
    ];
    const model = tf.sequential({ layers });
    model.setWeights(model.getWeights().map((w, i) => tf.tensor(randomArray(w.size, 40 + i), w.shape)));
    const x = tf.variable(tf.tensor4d(randomArray(2 * 9 * 9 * 6, 50), [2, 9, 9, 6]));
    const vars = [x, ...model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val)];
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(model.apply(x) as tf.Tensor)) as tf.Scalar, vars);
    const predicted = (model.predict(x) as tf.Tensor).dataSync();
    const out = { loss: value.dataSync()[0]!, grads: vars.map((v) => grads[v.name]!.dataSync()), predicted };
    model.dispose();
    return out;
  }

  it('1x1 convs on MatMul, spatial gradients on Eigen: same numbers, other native ops', () => {
    applyKernelPlan({ routes: {}, eigenFilterGradient: false });
    const { result: reference } = nativeOps(step);
    applyKernelPlan({
      routes: { 'conv1x1.forward': 'matmul', 'conv1x1.inputGrad': 'matmul', 'conv1x1.filterGrad': 'matmul', 'conv.inputGrad': 'explicit', 'conv.filterGrad': 'explicit' },
      eigenFilterGradient: true,
    });
    expect(Object.keys(activeKernelRoutes())).toHaveLength(5);
    const { result: routed, ops } = nativeOps(step);
    const convs = ops.filter((o) => o.name.startsWith('Conv2D'));
    // No native conv op with a 1x1 kernel ran (forward: inputs [x, filter]; gradients: the filter is input 1 or its sizes)
    expect(convs.filter((o) => o.name === 'Conv2D' && o.shapes[1]![0] === 1)).toEqual([]);
    expect(ops.some((o) => o.name === 'MatMul' || o.name === 'BatchMatMulV2')).toBe(true);
    // the 3x3 conv's gradients ran on the EXPLICIT-padding kernels
    expect(convs.filter((o) => o.name !== 'Conv2D').map((o) => o.padding)).toEqual(convs.filter((o) => o.name !== 'Conv2D').map(() => 'EXPLICIT'));
    expect(convs.some((o) => o.name === 'Conv2DBackpropInput')).toBe(true);
    expect(Math.abs(routed.loss - reference.loss)).toBeLessThan(1e-5 * Math.abs(reference.loss));
    reference.grads.forEach((g, i) => expect(maxRelErr(routed.grads[i]!, g), `gradient ${i}`).toBeLessThan(1e-5));
    expect(maxRelErr(routed.predicted, reference.predicted)).toBeLessThan(1e-5);
  });

  it('an empty plan leaves the native kernels in place', () => {
    applyKernelPlan({ routes: {}, eigenFilterGradient: false });
    const { ops } = nativeOps(step);
    expect(ops.some((o) => o.name === 'Conv2D' && o.shapes[1]![0] === 1)).toBe(true);
  });
});
