import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import {
  applyKernelPlan, disableFastKernels, enableFastKernels, loadRefconvOps, nativePerKernelRefocus, nativeSgdUpdate, refconvBatchNormTraining,
  refconvBatchNormTrainingGrad, refconvMaxPoolGrad, refconvRefocusPerKernel, refconvRefocusPerKernelGrad, refconvSgdUpdate,
} from '../src/fast-kernels.js';
import { refocusKernel } from '../src/refconv-op.js';
import { randomArray } from './naive.js';

/** torch.optim.SGD's step in float32, one rounding per operation (Math.fround), as an independent loop. */
function sgdLoop(p: Float32Array, b: Float32Array, g: Float32Array, lr: number, o: { momentum: number; dampening: number; weightDecay: number; nesterov: boolean }) {
  const f = Math.fround;
  const [m, wd, keep, lrf] = [f(o.momentum), f(o.weightDecay), f(1 - o.dampening), f(lr)];
  const np = new Float32Array(p.length);
  const nb = new Float32Array(p.length);
  for (let i = 0; i < p.length; i++) {
    let d = g[i];
    if (o.weightDecay !== 0) d = f(d + f(p[i] * wd));
    const next = f(f(b[i] * m) + (o.dampening !== 0 ? f(d * keep) : d));
    nb[i] = next;
    const step = o.nesterov ? f(d + f(next * m)) : next;
    np[i] = f(p[i] - f(step * lrf));
  }
  return { np, nb };
}

/** NHWC max-pool gradient by loops: each output's gradient goes to the first maximum of its window (row-major). */
function maxPoolGradLoop(x: Float32Array, [n, h, w, c]: number[], dy: Float32Array, [oh, ow]: number[], k: number, s: number, pad: number) {
  const dx = new Float32Array(x.length);
  for (let b = 0; b < n; b++) for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) for (let ch = 0; ch < c; ch++) {
    let best = -Infinity;
    let at = -1;
    for (let u = 0; u < k; u++) for (let v = 0; v < k; v++) {
      const y = i * s - pad + u;
      const xx = j * s - pad + v;
      if (y < 0 || y >= h || xx < 0 || xx >= w) continue;
      const idx = ((b * h + y) * w + xx) * c + ch;
      if (at < 0 || x[idx] > best) {
        best = x[idx];
        at = idx;
      }
    }
    if (at >= 0) dx[at] += dy[((b * oh + i) * ow + j) * c + ch];
  }
  return dx;
}

/** The per-kernel refocus of a [K, K, N] image with [M, M, N] maps (zero padding) and its transform gradient, by float64 loops. */
function refocusLoops(img: Float32Array, t: Float32Array, dy: Float32Array, k: number, m: number, n: number) {
  const out = new Float64Array(k * k * n);
  const grad = new Float64Array(m * m * n);
  const p = (m - 1) / 2;
  for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) for (let u = 0; u < m; u++) for (let v = 0; v < m; v++) {
    const sy = y + u - p, sx = x + v - p;
    if (sy < 0 || sx < 0 || sy >= k || sx >= k) continue;
    for (let c = 0; c < n; c++) {
      out[(y * k + x) * n + c] += img[(sy * k + sx) * n + c] * t[(u * m + v) * n + c];
      grad[(u * m + v) * n + c] += img[(sy * k + sx) * n + c] * dy[(y * k + x) * n + c];
    }
  }
  return { out, grad };
}

/**
 * Training-mode batch norm of [rows, C] data and its gradient by float64 loops, straight from the
 * definitions: two-pass mean and biased variance, y = (x - mean) / sqrt(var + eps) * scale + offset,
 * and the gradient of sum(y * dy) through the batch statistics.
 */
function batchNormLoops(x: Float32Array, dy: Float32Array, scale: Float32Array, offset: Float32Array, C: number, eps: number, act: 'none' | 'relu' | 'relu6' = 'none') {
  const rows = x.length / C;
  const mean = new Float64Array(C), variance = new Float64Array(C), inv = new Float64Array(C);
  const y = new Float64Array(x.length), dx = new Float64Array(x.length), dscale = new Float64Array(C), doffset = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let r = 0; r < rows; r++) s += x[r * C + c];
    mean[c] = s / rows;
    let v = 0;
    for (let r = 0; r < rows; r++) v += (x[r * C + c] - mean[c]) ** 2;
    variance[c] = v / rows;
    inv[c] = 1 / Math.sqrt(variance[c] + eps);
    let sdy = 0, sdyxhat = 0;
    const g = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      const i = r * C + c;
      const xhat = (x[i] - mean[c]) * inv[c];
      const pre = xhat * scale[c] + offset[c];
      y[i] = act === 'none' ? pre : act === 'relu' ? Math.max(pre, 0) : Math.min(Math.max(pre, 0), 6);
      // the activation's gradient passes where its input is in the open active range
      g[r] = act === 'none' || (pre > 0 && (act === 'relu' || pre < 6)) ? dy[i] : 0;
      sdy += g[r];
      sdyxhat += g[r] * xhat;
    }
    dscale[c] = sdyxhat;
    doffset[c] = sdy;
    // d/dx of sum(dy * y): scale * inv * (dy - mean(dy) - xhat * mean(dy * xhat))
    for (let r = 0; r < rows; r++) {
      const i = r * C + c;
      const xhat = (x[i] - mean[c]) * inv[c];
      dx[i] = scale[c] * inv[c] * (g[r] - sdy / rows - xhat * sdyxhat / rows);
    }
  }
  return { y, mean, variance, inv, dx, dscale, doffset };
}

/** Largest |a - b| relative to the largest |b| (one scale for a whole tensor). */
const scaledDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let worst = 0, big = 0;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(worst, Math.abs(a[i] - b[i]));
    big = Math.max(big, Math.abs(b[i]));
  }
  return worst / Math.max(big, 1e-30);
};

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
};

/** Runs `f` and returns its result with the names of the TF ops the native backend executed meanwhile. */
function withExecutedOps<T>(f: () => T): { result: T; ops: string[] } {
  const backend = tf.backend() as unknown as { executeSingleOutput: (name: string, ...rest: unknown[]) => unknown };
  const ops: string[] = [];
  const orig = backend.executeSingleOutput;
  backend.executeSingleOutput = function (this: unknown, name: string, ...rest: unknown[]) {
    ops.push(name);
    return orig.call(this, name, ...rest);
  };
  try {
    return { result: f(), ops };
  } finally {
    backend.executeSingleOutput = orig;
  }
}

const mismatches = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
};

describe("RefConv's own TF kernels (native/refconv_ops.cc)", () => {
  afterAll(async () => {
    enableFastKernels();
    const plan = (await initBackend()).kernelPlan;
    if (plan) applyKernelPlan(plan);
  });

  it('are built by the install and load into the native backend', () => {
    expect(loadRefconvOps()).toEqual({ ok: true });
  });

  for (const o of [
    { momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false },
    { momentum: 0.9, dampening: 0, weightDecay: 1e-4, nesterov: true },
    { momentum: 0.8, dampening: 0.1, weightDecay: 5e-4, nesterov: false },
  ]) {
    it(`RefconvSgdUpdate equals torch.optim.SGD's float32 step bit for bit (${JSON.stringify(o)})`, () => {
      const size = 200_003; // above the kernel's threading threshold, not a multiple of the chunk count
      const [p, b, g] = [1, 2, 3].map((s) => new Float32Array(randomArray(size, 40 + s)));
      const lr = 0.0137;
      const want = sgdLoop(p, b, g, lr, o);
      const [np, nb] = tf.tidy(() => refconvSgdUpdate(tf.tensor1d(p), tf.tensor1d(b), tf.tensor1d(g), lr, o).map((t) => tf.keep(t)));
      expect(mismatches(np.dataSync(), want.np)).toBe(0);
      expect(mismatches(nb.dataSync(), want.nb)).toBe(0);
      tf.dispose([np, nb]);
    });
  }

  for (const [shape, k, s, pad] of [[[2, 114, 114, 16], 3, 2, 0], [[3, 9, 9, 5], 3, 2, 1], [[2, 8, 8, 3], 2, 2, 0], [[1, 10, 10, 7], 3, 1, 1]] as Array<[number[], number, number, number]>) {
    it(`RefconvMaxPoolGrad equals a loop with the first-maximum rule, ties included (${shape}, ${k}x${k} s${s} pad ${pad})`, () => {
      // values on a coarse grid: most windows hold ties
      const x = new Float32Array(randomArray(shape.reduce((a, v) => a * v, 1), 7).map((v) => Math.round(3 * v)));
      const oh = Math.floor((shape[1] + 2 * pad - k) / s) + 1;
      const ow = Math.floor((shape[2] + 2 * pad - k) / s) + 1;
      const dy = new Float32Array(randomArray(shape[0] * oh * ow * shape[3], 8));
      const want = maxPoolGradLoop(x, shape, dy, [oh, ow], k, s, pad);
      const got = tf.tidy(() => refconvMaxPoolGrad(tf.tensor(x, shape), tf.tensor(dy, [shape[0], oh, ow, shape[3]]), [k, k], [s, s], [pad, pad]));
      const a = got.dataSync();
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - want[i]));
      expect(worst).toBeLessThan(1e-6); // sums of up to k*k float32 gradients
      got.dispose();
    });
  }

  it("with the route on, tfjs' max-pool gradient runs RefconvMaxPoolGrad and equals TF's MaxPoolGrad", async () => {
    const x = tf.tensor4d(randomArray(2 * 15 * 15 * 6, 9).map((v) => Math.round(3 * v)), [2, 15, 15, 6]);
    const gradOf = (pad: 'same' | 'valid') => tf.tidy(() => {
      const side = pad === 'same' ? 8 : 7;
      const r = tf.tensor4d(randomArray(2 * side * side * 6, 10), [2, side, side, 6]);
      return tf.grad((xx) => tf.sum(tf.mul(tf.maxPool(xx as tf.Tensor4D, 3, 2, pad), r)))(x);
    });
    const plan = (await initBackend()).kernelPlan!;
    disableFastKernels();
    applyKernelPlan({ ...plan, refconvOps: { sgdUpdate: false, maxPoolGrad: false } });
    const tfOwn = { same: gradOf('same').dataSync(), valid: gradOf('valid').dataSync() };
    enableFastKernels();
    applyKernelPlan({ ...plan, refconvOps: { sgdUpdate: false, maxPoolGrad: true } });
    const { ops: calls } = withExecutedOps(() => {
      for (const pad of ['same', 'valid'] as const) expect(mismatches(gradOf(pad).dataSync(), tfOwn[pad])).toBe(0);
    });
    expect(calls.filter((c) => c === 'RefconvMaxPoolGrad')).toHaveLength(2);
    expect(calls).not.toContain('MaxPoolGrad');
    x.dispose();
  });

  // N above the threading threshold and not a multiple of the channel block; N below one block; a 1x1 map; a 5x5 map over a 5x5 kernel; fewer channels than positions
  for (const [k, m, n] of [[3, 3, 9001], [3, 3, 100], [7, 3, 300], [3, 1, 64], [5, 5, 33], [5, 3, 2]]) {
    it(`RefconvRefocusPerKernel and its transform gradient equal loops (${k}x${k} kernels, ${m}x${m} maps, ${n} channels)`, () => {
      const img = new Float32Array(randomArray(k * k * n, 51));
      const t = new Float32Array(randomArray(m * m * n, 52));
      const dy = new Float32Array(randomArray(k * k * n, 53));
      const want = refocusLoops(img, t, dy, k, m, n);
      const [out, grad] = tf.tidy(() => {
        const image = tf.tensor4d(img, [1, k, k, n]);
        return [refconvRefocusPerKernel(image, tf.tensor4d(t, [m, m, n, 1])), refconvRefocusPerKernelGrad(image, tf.tensor4d(dy, [1, k, k, n]), m)].map((x) => tf.keep(x));
      });
      expect(out.shape).toEqual([1, k, k, n]);
      expect(grad.shape).toEqual([m, m, n, 1]);
      expect(maxAbsDiff(out.dataSync(), want.out)).toBeLessThan(1e-5);
      expect(maxAbsDiff(grad.dataSync(), want.grad)).toBeLessThan(1e-5);
      tf.dispose([out, grad]);
    });
  }

  it('with the route on, per-kernel refocusKernel and its gradients (transform and basis) run the native kernels and equal the depthwise-conv route', async () => {
    const basis = tf.tensor4d(randomArray(3 * 3 * 24 * 40, 61), [3, 3, 24, 40]);
    const transform = tf.tensor4d(randomArray(3 * 3 * 960, 62), [3, 3, 960, 1]);
    const r = tf.tensor4d(randomArray(3 * 3 * 960, 63), [3, 3, 24, 40]);
    const run = () => tf.tidy(() => {
      const [gb, gt] = tf.grads((b, t) => tf.sum(tf.mul(tf.square(refocusKernel(b as tf.Tensor4D, t as tf.Tensor4D)), r)))([basis, transform]);
      return [refocusKernel(basis, transform), gb!, gt!].map((x) => tf.keep(x));
    });
    const plan = (await initBackend()).kernelPlan!;
    enableFastKernels();
    applyKernelPlan({ ...plan, refconvOps: { sgdUpdate: false, maxPoolGrad: false, perKernelRefocus: false } });
    expect(nativePerKernelRefocus()).toBeNull();
    const viaDepthwise = run();
    applyKernelPlan({ ...plan, refconvOps: { sgdUpdate: false, maxPoolGrad: false, perKernelRefocus: true } });
    expect(nativePerKernelRefocus()).not.toBeNull();
    const { result: viaNative, ops: calls } = withExecutedOps(run);
    expect(calls).toContain('RefconvRefocusPerKernel');
    expect(calls).toContain('RefconvRefocusPerKernelGrad');
    for (let i = 0; i < 3; i++) expect(maxAbsDiff(viaNative[i]!.dataSync(), viaDepthwise[i]!.dataSync())).toBeLessThan(1e-4);
    disableFastKernels();
    expect(nativePerKernelRefocus()).toBeNull();
    enableFastKernels();
    tf.dispose([basis, transform, r, ...viaDepthwise, ...viaNative]);
  });

  // a vector-multiple and an odd channel count; rows above the threading threshold (two chunks);
  // a mean 1000x the spread (the variance must not cancel); a 2-D input; one row per channel block
  // and with the fused ReLU / ReLU6 (scales up to 4.5 and offsets up to 2.5 put values past 6)
  for (const [shape, shift, act] of [
    [[2, 5, 5, 16], 0, 'none'], [[4, 9, 9, 70], 0.5, 'none'], [[2, 30, 30, 17], 0, 'none'], [[3, 6, 6, 8], 1000, 'none'], [[300, 5], 2, 'none'], [[1, 1, 1, 33], 0, 'none'],
    [[2, 30, 30, 17], 0, 'relu'], [[4, 9, 9, 70], 3, 'relu6'], [[3, 6, 6, 8], 1000, 'relu6'],
  ] as Array<[number[], number, 'none' | 'relu' | 'relu6']>) {
    it(`RefconvBatchNormTraining and its gradient equal float64 loops (${shape.join('x')}, mean offset ${shift}, activation ${act})`, () => {
      const C = shape[shape.length - 1]!;
      const size = shape.reduce((a, v) => a * v, 1);
      const x = new Float32Array(randomArray(size, 71).map((v) => shift + 2 * v));
      const dy = new Float32Array(randomArray(size, 72));
      const scale = new Float32Array(randomArray(C, 73).map((v) => (act === 'none' ? 1 + 0.5 * v : 3 + 1.5 * v)));
      const offset = new Float32Array(randomArray(C, 74).map((v) => (act === 'none' ? v : 1 + 1.5 * v)));
      const want = batchNormLoops(x, dy, scale, offset, C, 1e-3, act);
      const activation = act === 'none' ? undefined : act;
      const got = tf.tidy(() => {
        const xt = tf.tensor(x, shape);
        const [y, mean, variance, inv] = refconvBatchNormTraining(xt, tf.tensor1d(scale), tf.tensor1d(offset), 1e-3, activation);
        const [dx, dscale, doffset] = refconvBatchNormTrainingGrad(tf.tensor(dy, shape), xt, tf.tensor1d(scale), tf.tensor1d(offset), mean, inv, 1e-3, activation);
        expect(y.shape).toEqual(shape);
        expect(dx.shape).toEqual(shape);
        return [y, mean, variance, inv, dx, dscale, doffset].map((t) => t.dataSync());
      });
      const names = ['y', 'mean', 'variance', 'inv', 'dx', 'dscale', 'doffset'] as const;
      // one row per channel: the variance is 0 and dx is 0 up to rounding, so it is compared absolutely
      names.forEach((name, i) => {
        const err = size === C ? maxAbsDiff(got[i]!, want[name]) : scaledDiff(got[i]!, want[name]);
        // with a large mean, x and the mean themselves carry float32 rounding of that magnitude
        expect(err, name).toBeLessThan(size === C ? 1e-4 : 2e-6 + 2 ** -23 * shift);
      });
    });
  }

  it('RefconvBatchNormTraining rejects mismatched shapes with a message naming the op and the input', () => {
    const x = tf.zeros([2, 3, 3, 4]);
    expect(() => refconvBatchNormTraining(x, tf.ones([5]) as tf.Tensor1D, tf.zeros([4]) as tf.Tensor1D, 1e-3)).toThrow(/RefconvBatchNormTraining: input 1 must be a vector of the channel count/);
    expect(() => refconvBatchNormTrainingGrad(tf.zeros([2, 3, 3, 5]), x, tf.ones([4]) as tf.Tensor1D, tf.zeros([4]) as tf.Tensor1D, tf.zeros([4]) as tf.Tensor1D, tf.ones([4]) as tf.Tensor1D, 1e-3)).toThrow(/RefconvBatchNormTrainingGrad: input 0 must have x's shape/);
    x.dispose();
  });

  it('nativeSgdUpdate follows the plan: off where the self-check did not choose it, and with the fast kernels off', async () => {
    const plan = (await initBackend()).kernelPlan!;
    applyKernelPlan({ ...plan, refconvOps: { sgdUpdate: false, maxPoolGrad: false } });
    expect(nativeSgdUpdate()).toBeNull();
    applyKernelPlan({ ...plan, refconvOps: { sgdUpdate: true, maxPoolGrad: false } });
    expect(nativeSgdUpdate()).toBe(refconvSgdUpdate);
    disableFastKernels();
    expect(nativeSgdUpdate()).toBeNull();
  });
});
