import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { RefConv2D } from '../src/refconv-layer.js';
import { basisColumns, convWithKernel, refConv2d, refocusKernel, transformShape, type Grouping } from '../src/refconv-op.js';
import { maxRelErr, naiveConv, officialRefocus, oihwToHwio, randomArray } from './naive.js';

interface Case {
  name: string;
  cin: number;
  cout: number; // for depthwise: C * multiplier
  k: number;
  mapK: number;
  depthwise: boolean;
  grouping: Grouping;
}

/** Number of transform groups the official code (or the option) implies. */
function groupsOf(c: Case): number {
  const n = c.depthwise ? c.cout : c.cin * c.cout;
  if (c.grouping === 'per-kernel') return n;
  if (c.grouping === 'full') return 1;
  return c.depthwise ? c.cout / c.cin : n; // G = Cin*Cout/g^2
}

/**
 * Our transform layout from an official convmap [N, N/G, m, m]. `order(c)` maps our kernel channel
 * to PyTorch's (c = i*Cout + o  <->  n = o*Cin + i for a regular conv; identity for depthwise).
 */
function convmapToOurs(convmap: Float32Array, n: number, groups: number, m: number, order: (c: number) => number): { data: Float32Array; shape: number[] } {
  const mm = m * m;
  if (groups === n) {
    const t = new Float32Array(mm * n);
    for (let p = 0; p < mm; p++) for (let c = 0; c < n; c++) t[p * n + c] = convmap[order(c) * mm + p];
    return { data: t, shape: [m, m, n, 1] };
  }
  const tn = n / groups;
  const t = new Float32Array(mm * tn * n);
  for (let p = 0; p < mm; p++)
    for (let j = 0; j < tn; j++)
      for (let c = 0; c < n; c++) {
        const nOut = order(c);
        const jOfficial = groups === 1 ? order(j) : j;
        t[(p * tn + j) * n + c] = convmap[(nOut * tn + jOfficial) * mm + p];
      }
  return { data: t, shape: [m, m, tn, n] };
}

const cases: Case[] = [
  { name: 'regular 3x3, map 3 (official per-kernel)', cin: 2, cout: 3, k: 3, mapK: 3, depthwise: false, grouping: 'official' },
  { name: 'regular 3x3, map 1', cin: 3, cout: 2, k: 3, mapK: 1, depthwise: false, grouping: 'official' },
  { name: 'regular 5x5, map 3', cin: 2, cout: 2, k: 5, mapK: 3, depthwise: false, grouping: 'official' },
  { name: 'regular 5x5, map 5', cin: 1, cout: 3, k: 5, mapK: 5, depthwise: false, grouping: 'official' },
  { name: 'regular 7x7, map 3', cin: 2, cout: 2, k: 7, mapK: 3, depthwise: false, grouping: 'official' },
  { name: 'regular 3x3, full grouping', cin: 2, cout: 3, k: 3, mapK: 3, depthwise: false, grouping: 'full' },
  { name: 'depthwise 3x3, map 3 (official dense)', cin: 4, cout: 4, k: 3, mapK: 3, depthwise: true, grouping: 'official' },
  { name: 'depthwise 5x5, map 5', cin: 3, cout: 3, k: 5, mapK: 5, depthwise: true, grouping: 'official' },
  { name: 'depthwise 5x5, map 1 (official dense)', cin: 3, cout: 3, k: 5, mapK: 1, depthwise: true, grouping: 'official' },
  { name: 'depthwise 3x3 multiplier 2 (official G = 2)', cin: 3, cout: 6, k: 3, mapK: 3, depthwise: true, grouping: 'official' },
  { name: 'depthwise 3x3, per-kernel grouping', cin: 4, cout: 4, k: 3, mapK: 3, depthwise: true, grouping: 'per-kernel' },
  { name: 'depthwise 7x7 multiplier 2, full grouping', cin: 2, cout: 4, k: 7, mapK: 3, depthwise: true, grouping: 'full' },
];

function setup(c: Case, seed: number) {
  const ig = c.depthwise ? 1 : c.cin; // in-channels per group
  const n = c.cout * ig;
  const groups = groupsOf(c);
  const wOihw = randomArray(c.cout * ig * c.k * c.k, seed);
  const convmap = randomArray(n * (n / groups) * c.mapK * c.mapK, seed + 1);
  const expectedOihw = officialRefocus(wOihw, c.cout, ig, c.k, convmap, c.mapK, groups);
  // Our tensors.
  const basisHwio = oihwToHwio(wOihw, c.cout, ig, c.k);
  const basisShape = c.depthwise ? [c.k, c.k, c.cin, c.cout / c.cin] : [c.k, c.k, c.cin, c.cout];
  const order = c.depthwise ? (x: number) => x : (x: number) => (x % c.cout) * c.cin + Math.floor(x / c.cout);
  const t = convmapToOurs(convmap, n, groups, c.mapK, order);
  return { wOihw, expectedOihw, basisHwio, basisShape, transform: t, groups, ig };
}

describe('refocusKernel matches the official RepConv definition (naive loops)', () => {
  for (const c of cases) {
    it(c.name, () => {
      const s = setup(c, 7 + c.k * 13 + c.cin);
      const geometry = { kernelSize: c.k, inChannels: c.cin, outPerGroup: s.basisShape[3], depthwise: c.depthwise };
      expect(transformShape(geometry, c.mapK, c.grouping)).toEqual(s.transform.shape);
      const basis = tf.tensor4d(s.basisHwio, s.basisShape as [number, number, number, number]);
      const transform = tf.tensor4d(s.transform.data, s.transform.shape as [number, number, number, number]);
      const wt = refocusKernel(basis, transform);
      const expected = oihwToHwio(s.expectedOihw, c.cout, s.ig, c.k);
      expect(maxRelErr(wt.dataSync(), expected)).toBeLessThan(1e-5);
      tf.dispose([basis, transform, wt]);
    });
  }
});

describe('refConv2d output matches a naive grouped convolution with the official kernel', () => {
  const convs: Array<{ stride: number; dilation: number; padding: 'same' | 'valid' | [[number, number], [number, number]]; bias: boolean }> = [
    { stride: 1, dilation: 1, padding: 'same', bias: false },
    { stride: 2, dilation: 1, padding: 'same', bias: true },
    { stride: 1, dilation: 2, padding: 'valid', bias: true },
    { stride: 2, dilation: 1, padding: [[1, 1], [2, 0]], bias: false },
  ];
  for (const c of [cases[0], cases[2], cases[6], cases[8]]) {
    for (const o of convs) {
      it(`${c.name}, stride ${o.stride}, dilation ${o.dilation}, padding ${JSON.stringify(o.padding)}`, () => {
        const s = setup(c, 99);
        const xShape = [2, 11, 10, c.cin];
        const x = randomArray(xShape.reduce((a, b) => a * b), 5);
        const bias = o.bias ? randomArray(c.cout, 3) : undefined;
        const ref = naiveConv(x, xShape, s.expectedOihw, c.cout, c.k, c.depthwise ? c.cin : 1, o.stride, o.dilation, o.padding, bias);
        const y = refConv2d(
          tf.tensor4d(x, xShape as [number, number, number, number]),
          tf.tensor4d(s.basisHwio, s.basisShape as [number, number, number, number]),
          tf.tensor4d(s.transform.data, s.transform.shape as [number, number, number, number]),
          { strides: o.stride, dilations: o.dilation, padding: o.padding, depthwise: c.depthwise, bias: bias ? tf.tensor1d(bias) : undefined },
        );
        expect(y.shape).toEqual(ref.shape);
        expect(maxRelErr(y.dataSync(), ref.data)).toBeLessThan(1e-5);
      });
    }
  }
});

describe('gradients agree with finite differences', () => {
  for (const c of [cases[0], cases[6], cases[8]]) {
    it(c.name, () => {
      const s = setup(c, 3);
      const xShape: [number, number, number, number] = [1, 6, 6, c.cin];
      const x = tf.tensor4d(randomArray(36 * c.cin, 11), xShape);
      const basis = tf.tensor4d(s.basisHwio, s.basisShape as [number, number, number, number]);
      const r = tf.tensor(randomArray(36 * c.cout, 12), [1, 6, 6, c.cout]);
      const loss = (t: tf.Tensor, xx: tf.Tensor) =>
        tf.sum(tf.mul(tf.square(refConv2d(xx as tf.Tensor4D, basis, t as tf.Tensor4D, { depthwise: c.depthwise, padding: 'same' })), r));
      const t0 = s.transform.data;
      const tShape = s.transform.shape as [number, number, number, number];
      const [gT, gX] = tf.grads((t: tf.Tensor, xx: tf.Tensor) => loss(t, xx))([tf.tensor4d(t0, tShape), x]);
      const gTd = gT.dataSync();
      const gXd = gX.dataSync();
      const eps = 1e-2;
      // Central differences on a spread of entries of the transform and of the input.
      for (const idx of [0, Math.floor(t0.length / 3), t0.length - 1]) {
        const plus = Float32Array.from(t0); plus[idx] += eps;
        const minus = Float32Array.from(t0); minus[idx] -= eps;
        const fd = (loss(tf.tensor4d(plus, tShape), x).dataSync()[0] - loss(tf.tensor4d(minus, tShape), x).dataSync()[0]) / (2 * eps);
        expect(Math.abs(fd - gTd[idx])).toBeLessThan(2e-2 * Math.max(1, Math.abs(fd)));
      }
      const xd = x.dataSync();
      const tt = tf.tensor4d(t0, tShape);
      for (const idx of [0, 17, xd.length - 1]) {
        const plus = Float32Array.from(xd); plus[idx] += eps;
        const minus = Float32Array.from(xd); minus[idx] -= eps;
        const fd = (loss(tt, tf.tensor4d(plus, xShape)).dataSync()[0] - loss(tt, tf.tensor4d(minus, xShape)).dataSync()[0]) / (2 * eps);
        expect(Math.abs(fd - gXd[idx])).toBeLessThan(2e-2 * Math.max(1, Math.abs(fd)));
      }
    });
  }
});

describe('dilated RefConv layers train (space-to-batch route)', () => {
  for (const depthwise of [false, true]) {
    it(`${depthwise ? 'depthwise' : 'regular'} conv, dilation 2: gradient w.r.t. the transform matches finite differences`, () => {
      const c = depthwise ? cases[6] : cases[0];
      const s = setup(c, 21);
      const x = tf.tensor4d(randomArray(2 * 9 * 9 * c.cin, 8), [2, 9, 9, c.cin]);
      const basis = tf.tensor4d(s.basisHwio, s.basisShape as [number, number, number, number]);
      const tShape = s.transform.shape as [number, number, number, number];
      const loss = (t: tf.Tensor) => tf.sum(tf.square(refConv2d(x, basis, t as tf.Tensor4D, { depthwise, dilations: 2, padding: 'same' })));
      const g = tf.grad(loss)(tf.tensor4d(s.transform.data, tShape)).dataSync();
      const eps = 1e-2;
      for (const idx of [0, Math.floor(s.transform.data.length / 2)]) {
        const plus = Float32Array.from(s.transform.data); plus[idx] += eps;
        const minus = Float32Array.from(s.transform.data); minus[idx] -= eps;
        const fd = (loss(tf.tensor4d(plus, tShape)).dataSync()[0] - loss(tf.tensor4d(minus, tShape)).dataSync()[0]) / (2 * eps);
        expect(Math.abs(fd - g[idx])).toBeLessThan(2e-2 * Math.max(1, Math.abs(fd)));
      }
    });
  }
});

describe('dense transforms as a MatMul of the basis columns', () => {
  it('basisColumns is im2col with zero padding (hand-indexed)', () => {
    const k = 3, m = 3, n = 2;
    const data = randomArray(k * k * n, 5);
    const cols = basisColumns(tf.tensor4d(data, [k, k, n, 1]), m).arraySync();
    expect(cols.length).toBe(k * k);
    for (let y = 0; y < k; y++)
      for (let x = 0; x < k; x++)
        for (let dy = 0; dy < m; dy++)
          for (let dx = 0; dx < m; dx++)
            for (let c = 0; c < n; c++) {
              const sy = y + dy - 1, sx = x + dx - 1;
              const want = sy < 0 || sx < 0 || sy >= k || sx >= k ? 0 : data[(sy * k + sx) * n + c]!;
              expect(cols[y * k + x]![(dy * m + dx) * n + c]).toBe(want);
            }
  });

  it('the RefConv2D layer follows a new basis (its cached columns are recomputed after setBasis)', () => {
    const c = cases.find((x) => x.name.startsWith('depthwise 3x3, map 3'))!;
    const layer = new RefConv2D({ kernelSize: 3, depthwise: true, padding: 'same', useBias: false, mapK: 3 });
    layer.apply(tf.input({ shape: [6, 6, c.cin] }));
    for (const seed of [21, 22]) {
      const s = setup(c, seed);
      layer.setBasis(tf.tensor4d(s.basisHwio, s.basisShape as [number, number, number, number]));
      layer.setTransform(tf.tensor4d(s.transform.data, s.transform.shape as [number, number, number, number]));
      const wt = layer.refocusedKernel();
      expect(maxRelErr(wt.dataSync(), oihwToHwio(s.expectedOihw, c.cout, s.ig, c.k))).toBeLessThan(1e-5);
      wt.dispose();
    }
    layer.dispose();
  });
});

describe('refocusKernel rejects shapes that do not fit', () => {
  it('names the problem', () => {
    const basis = tf.zeros([3, 3, 2, 2]) as tf.Tensor4D;
    expect(() => refocusKernel(basis, tf.zeros([3, 3, 5, 1]) as tf.Tensor4D)).toThrow(/does not fit a basis with N=4/);
    expect(() => refocusKernel(basis, tf.zeros([5, 5, 4, 1]) as tf.Tensor4D)).toThrow(/no larger than the kernel/);
  });

  it('an input smaller than the dilated kernel is an error, not an empty or misshaped output', () => {
    const x = tf.zeros([1, 9, 8, 2]) as tf.Tensor4D;
    const k = tf.zeros([5, 5, 2, 2]) as tf.Tensor4D;
    expect(() => convWithKernel(x, k, { dilations: 2, padding: 'valid' })).toThrow(/input 9x8 \(padded 9x8\) is smaller than the 5x5 kernel with dilation \(2, 2\) \(9x9\)/);
    expect(convWithKernel(x, k, { dilations: 2, padding: 'same' }).shape).toEqual([1, 9, 8, 2]);
    expect(convWithKernel(tf.zeros([1, 9, 9, 2]) as tf.Tensor4D, k, { dilations: 2, padding: 'valid' }).shape).toEqual([1, 1, 1, 2]);
  });
});
