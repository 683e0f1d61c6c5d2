import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { mapBucket } from '../src/kernel-check.js';
import { applyKernelPlan, conv2dInputGradient, disableFastKernels, enableFastKernels } from '../src/fast-kernels.js';
import { maxRelErr, randomArray } from './naive.js';

/** Runs one training-mode forward/backward of conv -> BN -> ReLU -> ReLU6 and returns everything observable. */
function trainStep(seed: number) {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [7, 7, 3], filters: 5, kernelSize: 3, padding: 'same', useBias: false, name: 'conv' }),
      tf.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5, name: 'bn' }),
      tf.layers.reLU({ name: 'relu' }),
      tf.layers.conv2d({ filters: 4, kernelSize: 1, name: 'pw' }),
      tf.layers.reLU({ maxValue: 6, name: 'relu6' }),
    ],
  });
  model.setWeights(model.getWeights().map((w, i) => tf.tensor(randomArray(w.size, seed + i).map((v) => (i === 4 ? 1.5 + v : i === 1 ? 1 + 0.3 * v : 2 * v)), w.shape)));
  const x = tf.tensor4d(randomArray(4 * 7 * 7 * 3, seed + 50).map((v) => 3 * v + 0.5), [4, 7, 7, 3]);
  const r = tf.tensor4d(randomArray(4 * 7 * 7 * 4, seed + 60), [4, 7, 7, 4]);
  const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(model.apply(x, { training: true }) as tf.Tensor, r)) as tf.Scalar, vars);
  const bn = model.getLayer('bn');
  return {
    loss: value.dataSync()[0],
    grads: vars.map((v) => grads[v.name].dataSync()),
    moving: bn.getWeights().slice(2).map((w) => w.dataSync()),
  };
}

describe('fused native kernels (BatchNorm training, ReLU/ReLU6 gradients)', () => {
  afterAll(() => enableFastKernels());

  /** Runs `f` and returns its result with the names of every TF op the native backend executed meanwhile. */
  function recordingOps<T>(f: () => T): { result: T; single: string[]; multiple: string[] } {
    const backend = tf.backend() as unknown as Record<'executeSingleOutput' | 'executeMultipleOutputs', (name: string, ...rest: unknown[]) => unknown>;
    const single: string[] = [];
    const multiple: string[] = [];
    const orig = { s: backend.executeSingleOutput, m: backend.executeMultipleOutputs };
    backend.executeSingleOutput = function (name: string, ...rest: unknown[]) {
      single.push(name);
      return orig.s.call(this, name, ...rest);
    };
    backend.executeMultipleOutputs = function (name: string, ...rest: unknown[]) {
      multiple.push(name);
      return orig.m.call(this, name, ...rest);
    };
    try {
      return { result: f(), single, multiple };
    } finally {
      backend.executeSingleOutput = orig.s;
      backend.executeMultipleOutputs = orig.m;
    }
  }

  for (const own of [false, true]) {
    const ops = own ? ['RefconvBatchNormTraining', 'RefconvBatchNormTrainingGrad'] : ['FusedBatchNormV3', 'FusedBatchNormGradV3'];
    it(`give tfjs' own results for loss, every gradient and the BN moving statistics (batch norm on ${ops.join(' / ')}${own ? ', the ReLU after it fused' : ''})`, async () => {
      const plan = (await initBackend()).kernelPlan!;
      applyKernelPlan({ ...plan, refconvOps: { sgdUpdate: false, maxPoolGrad: false, ...plan.refconvOps, batchNormTraining: own } });
      disableFastKernels();
      const reference = trainStep(3);
      expect(enableFastKernels()).toBe(true);
      const { result: fast, single, multiple } = recordingOps(() => trainStep(3));
      applyKernelPlan(plan);
      expect(multiple).toEqual(ops);
      // the BN -> ReLU pair: with RefConv's kernels the ReLU and its gradient are part of the BN op
      expect(single.includes('Relu') && single.includes('ReluGrad')).toBe(!own);
      expect(single).toContain('Relu6');
      expect(Math.abs(fast.loss - reference.loss)).toBeLessThan(1e-4 * Math.max(1, Math.abs(reference.loss)));
      reference.grads.forEach((g, i) => expect(maxRelErr(fast.grads[i], g)).toBeLessThan(1e-4));
      reference.moving.forEach((m, i) => expect(maxRelErr(fast.moving[i], m)).toBeLessThan(1e-5));
    });
  }

  it('fuse a BN with the ReLU6 after it only where that ReLU6 is its only consumer, with the same results as tfjs', async () => {
    // conv -> bn1 -> relu6 (fusable); conv -> bn2 -> {relu6, add} (bn2's output is also read by the add: not fusable)
    const input = tf.input({ shape: [6, 6, 3] });
    const c1 = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false }).apply(input) as tf.SymbolicTensor;
    const a1 = tf.layers.reLU({ maxValue: 6 }).apply(tf.layers.batchNormalization({ epsilon: 1e-5 }).apply(c1)) as tf.SymbolicTensor;
    const c2 = tf.layers.conv2d({ filters: 4, kernelSize: 1, useBias: false }).apply(a1) as tf.SymbolicTensor;
    const b2 = tf.layers.batchNormalization({ epsilon: 1e-5 }).apply(c2) as tf.SymbolicTensor;
    const out = tf.layers.add().apply([tf.layers.reLU({ maxValue: 6 }).apply(b2) as tf.SymbolicTensor, b2]) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    model.setWeights(model.getWeights().map((w, i) => tf.tensor(randomArray(w.size, 80 + i).map((v) => (w.shape.length === 1 ? 2 + 2 * v : 1.5 * v)), w.shape)));
    const x = tf.tensor4d(randomArray(3 * 6 * 6 * 3, 90).map((v) => 2 * v), [3, 6, 6, 3]);
    const r = tf.tensor4d(randomArray(3 * 6 * 6 * 4, 91), [3, 6, 6, 4]);
    const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
    const step = () => {
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(model.apply(x, { training: true }) as tf.Tensor, r)) as tf.Scalar, vars);
      return { loss: value.dataSync()[0]!, grads: vars.map((v) => grads[v.name]!.dataSync()) };
    };
    const plan = (await initBackend()).kernelPlan!;
    disableFastKernels();
    const reference = step();
    enableFastKernels();
    applyKernelPlan({ ...plan, refconvOps: { sgdUpdate: false, maxPoolGrad: false, ...plan.refconvOps, batchNormTraining: true } });
    const { result: fast, single } = recordingOps(step);
    applyKernelPlan(plan);
    // one ReLU6 (bn2's) still runs on its own, forward and backward
    expect(single.filter((n) => n === 'Relu6')).toHaveLength(1);
    expect(single.filter((n) => n === 'Relu6Grad')).toHaveLength(1);
    expect(Math.abs(fast.loss - reference.loss)).toBeLessThan(1e-4 * Math.max(1, Math.abs(reference.loss)));
    reference.grads.forEach((g, i) => expect(maxRelErr(fast.grads[i]!, g)).toBeLessThan(1e-4));
    tf.dispose([x, r]);
    model.dispose();
  });

  it('does not leak tensors over repeated steps', () => {
    enableFastKernels();
    trainStep(5);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) trainStep(5);
    // each trainStep builds a new model: its weights stay alive, nothing else may
    const perStep = (tf.memory().numTensors - before) / 3;
    disableFastKernels();
    trainStep(5);
    const before2 = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) trainStep(5);
    expect(perStep).toBe((tf.memory().numTensors - before2) / 3);
  });
});

describe('conv2d input gradient as a forward conv', () => {
  const cases: Array<{ h: number; w: number; k: number; s: number; pad: 'same' | 'valid' | number | number[][] }> = [
    { h: 7, w: 7, k: 3, s: 1, pad: 'same' },
    { h: 8, w: 6, k: 3, s: 2, pad: 'same' },
    { h: 9, w: 9, k: 3, s: 2, pad: 'valid' },
    { h: 10, w: 8, k: 1, s: 2, pad: 'valid' },
    { h: 11, w: 11, k: 7, s: 2, pad: 'same' },
    { h: 5, w: 6, k: 5, s: 1, pad: 'valid' },
    { h: 2, w: 2, k: 3, s: 1, pad: 'same' },
    { h: 8, w: 8, k: 3, s: 2, pad: [[0, 0], [1, 0], [0, 2], [0, 0]] },
  ];
  for (const c of cases) {
    it(`matches TF's Conv2DBackpropInput: ${c.h}x${c.w}, k ${c.k}, stride ${c.s}, pad ${JSON.stringify(c.pad)}`, () => {
      const x = tf.tensor4d(randomArray(2 * c.h * c.w * 3, 1), [2, c.h, c.w, 3]);
      const w = tf.tensor4d(randomArray(c.k * c.k * 3 * 4, 2), [c.k, c.k, 3, 4]);
      const grad = () => tf.grad((xx: tf.Tensor) => tf.sum(tf.square(tf.conv2d(xx as tf.Tensor4D, w, c.s, c.pad as never))))(x).dataSync();
      // TF's native backprop-input only takes 'same'/'valid': for explicit padding the reference is
      // an explicit tf.pad followed by a 'valid' conv.
      const explicit = typeof c.pad === 'number' ? [[0, 0], [c.pad, c.pad], [c.pad, c.pad], [0, 0]] : Array.isArray(c.pad) ? c.pad : null;
      const referenceGrad = () => explicit
        ? tf.grad((xx: tf.Tensor) => tf.sum(tf.square(tf.conv2d(tf.pad(xx, explicit as Array<[number, number]>) as tf.Tensor4D, w, c.s, 'valid'))))(x).dataSync()
        : grad();
      disableFastKernels();
      const reference = referenceGrad();
      enableFastKernels();
      const fast = grad();
      expect(maxRelErr(fast, reference)).toBeLessThan(1e-5);
    });
  }
});

describe('conv2dInputGradient (the forward-conv route) on every stride/padding kind', () => {
  for (const c of [
    { h: 8, w: 6, k: 3, s: 2, pad: 'same' as const },
    { h: 9, w: 9, k: 3, s: 2, pad: 'valid' as const },
    { h: 11, w: 11, k: 7, s: 2, pad: 'same' as const },
    { h: 12, w: 12, k: 3, s: 1, pad: 'same' as const },
  ]) {
    it(`${c.h}x${c.w}, k ${c.k}, stride ${c.s}, ${c.pad}`, () => {
      disableFastKernels();
      const x = tf.tensor4d(randomArray(2 * c.h * c.w * 3, 4), [2, c.h, c.w, 3]);
      const w = tf.tensor4d(randomArray(c.k * c.k * 3 * 5, 5), [c.k, c.k, 3, 5]);
      const y = tf.conv2d(x, w, c.s, c.pad);
      const dy = tf.tensor4d(randomArray(y.size, 6), y.shape);
      const reference = tf.conv2dTranspose(dy, w, x.shape, c.s, c.pad).dataSync();
      const ours = conv2dInputGradient(dy, w, x.shape, [c.s, c.s], c.pad).dataSync();
      enableFastKernels();
      expect(maxRelErr(ours, reference)).toBeLessThan(1e-5);
    });
  }
});

describe('Conv2D layers under a gradient tape (plain conv instead of the fused conv)', () => {
  afterAll(() => enableFastKernels());
  const configs = [
    { strides: 1, padding: 'same' as const, dilationRate: 1, useBias: false },
    { strides: 2, padding: 'same' as const, dilationRate: 1, useBias: true },
    { strides: 1, padding: 'valid' as const, dilationRate: 1, useBias: true },
  ];
  for (const c of configs) {
    it(`gives tfjs' fused-conv gradients for input, kernel and bias: ${JSON.stringify(c)}`, () => {
      const run = () => {
        const layer = tf.layers.conv2d({ filters: 4, kernelSize: 3, ...c, inputShape: [9, 9, 3] });
        tf.sequential({ layers: [layer] });
        layer.setWeights(layer.getWeights().map((w, i) => tf.tensor(randomArray(w.size, 20 + i), w.shape)));
        const x = tf.variable(tf.tensor4d(randomArray(2 * 9 * 9 * 3, 30), [2, 9, 9, 3]));
        const vars = [x, ...layer.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val)];
        const { grads } = tf.variableGrads(() => tf.sum(tf.square(layer.apply(x) as tf.Tensor)) as tf.Scalar, vars);
        return vars.map((v) => grads[v.name].dataSync());
      };
      disableFastKernels();
      const reference = run();
      enableFastKernels();
      const fast = run();
      expect(fast.length).toBe(c.useBias ? 3 : 2);
      reference.forEach((g, i) => expect(maxRelErr(fast[i], g)).toBeLessThan(1e-5));
    });
  }

  it('does not compute the input gradient of a conv whose input needs none (the stem)', async () => {
    const model = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [16, 16, 3], filters: 8, kernelSize: 3, strides: 2, useBias: false })] });
    const x = tf.tensor4d(randomArray(2 * 16 * 16 * 3, 7), [2, 16, 16, 3]);
    const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
    const kernelsOfStep = async () => {
      const info = await tf.profile(() => {
        const { value, grads } = tf.variableGrads(() => tf.sum(model.apply(x) as tf.Tensor) as tf.Scalar, vars);
        tf.dispose([value, ...Object.values(grads)]);
      });
      return info.kernels.map((k) => k.name);
    };
    disableFastKernels();
    // tfjs' fused conv computes it (what this patch avoids): the check below can fail.
    expect(await kernelsOfStep()).toContain('Conv2DBackpropInput');
    enableFastKernels();
    const names = await kernelsOfStep();
    expect(names).toContain('Conv2DBackpropFilter');
    expect(names).not.toContain('Conv2DBackpropInput');
  });
});

/** Runs `f` and returns its result with the `padding` attribute of every native `Conv2DBackpropFilter` it ran. */
function filterGradientPaddings<T>(f: () => T): { result: T; paddings: unknown[] } {
  const backend = tf.backend() as unknown as { executeSingleOutput: (name: string, attrs: Array<{ name: string; value: unknown }>, ...rest: unknown[]) => unknown };
  const paddings: unknown[] = [];
  const orig = backend.executeSingleOutput;
  backend.executeSingleOutput = function (name, attrs, ...rest) {
    if (name === 'Conv2DBackpropFilter') paddings.push(attrs.find((a) => a.name === 'padding')?.value);
    return orig.call(this, name, attrs, ...rest);
  };
  try {
    return { result: f(), paddings };
  } finally {
    backend.executeSingleOutput = orig;
  }
}

describe("conv2d filter gradient on TF's Eigen kernel (explicit padding, >= 64 input channels)", async () => {
  afterAll(() => enableFastKernels());
  // The route is taken only where this host's kernel self-check verified it (and oneDNN is on).
  const plan = (await initBackend()).kernelPlan;
  // ... per output-map bucket (<= 7x7 or larger); the cases below cover both
  const maps = plan?.eigenFilterGradientMaps ?? { small: !!plan?.eigenFilterGradient, large: !!plan?.eigenFilterGradient };
  const eigenRoute = (outPositions: number) => !!plan?.onednn && !!plan.eigenFilterGradient && maps[mapBucket(outPositions)];
  const cases: Array<{ h: number; w: number; k: number; s: number; pad: 'same' | 'valid' | number[][] }> = [
    { h: 9, w: 7, k: 3, s: 1, pad: 'same' },
    { h: 10, w: 10, k: 3, s: 2, pad: 'same' },
    { h: 9, w: 9, k: 3, s: 2, pad: 'valid' },
    { h: 8, w: 8, k: 5, s: 1, pad: 'same' },
    { h: 8, w: 8, k: 3, s: 2, pad: [[0, 0], [1, 1], [1, 1], [0, 0]] },
  ];
  for (const c of cases) {
    it(`matches TF's oneDNN/default kernel: ${c.h}x${c.w}, k ${c.k}, stride ${c.s}, pad ${JSON.stringify(c.pad)}`, () => {
      const cin = 64;
      const x = tf.tensor4d(randomArray(2 * c.h * c.w * cin, 11), [2, c.h, c.w, cin]);
      const w = tf.tensor4d(randomArray(c.k * c.k * cin * 3, 12), [c.k, c.k, cin, 3]);
      const explicit = Array.isArray(c.pad) ? (c.pad as Array<[number, number]>) : null;
      const conv = (ww: tf.Tensor4D, padded: boolean) =>
        padded && explicit ? tf.conv2d(tf.pad(x, explicit) as tf.Tensor4D, ww, c.s, 'valid') : tf.conv2d(x, ww, c.s, c.pad as never);
      const r = tf.tensor4d(randomArray(conv(w, true).size, 13), conv(w, true).shape);
      const grad = (padded: boolean) => tf.grad((ww: tf.Tensor) => tf.sum(tf.mul(conv(ww as tf.Tensor4D, padded), r)))(w).dataSync();
      disableFastKernels();
      // reference: TF's own kernel ('same'/'valid'; explicit padding as tf.pad + 'valid')
      const reference = grad(true);
      enableFastKernels();
      const { result: fast, paddings } = filterGradientPaddings(() => grad(false));
      const out = r.shape[1] * r.shape[2];
      expect(paddings).toEqual([explicit || eigenRoute(out) ? 'EXPLICIT' : (c.pad as string).toUpperCase()]);
      expect(maxRelErr(fast, reference)).toBeLessThan(1e-5);
    });
  }

  it('REFCONV_EIGEN_FILTER_GRADIENT=0 keeps every filter gradient on the default kernel', () => {
    const x = tf.tensor4d(randomArray(2 * 6 * 6 * 64, 31), [2, 6, 6, 64]);
    const w = tf.tensor4d(randomArray(3 * 3 * 64 * 2, 32), [3, 3, 64, 2]);
    process.env.REFCONV_EIGEN_FILTER_GRADIENT = '0';
    try {
      const { paddings } = filterGradientPaddings(() => tf.grad((ww: tf.Tensor) => tf.sum(tf.conv2d(x, ww as tf.Tensor4D, 1, 'same')))(w).dataSync());
      expect(paddings).toEqual(['SAME']);
    } finally {
      delete process.env.REFCONV_EIGEN_FILTER_GRADIENT;
    }
  });

  it('leaves narrow convs (the stem) to the default kernel', () => {
    const x = tf.tensor4d(randomArray(2 * 8 * 8 * 3, 21), [2, 8, 8, 3]);
    const w = tf.tensor4d(randomArray(3 * 3 * 3 * 4, 22), [3, 3, 3, 4]);
    const { paddings } = filterGradientPaddings(() => tf.grad((ww: tf.Tensor) => tf.sum(tf.conv2d(x, ww as tf.Tensor4D, 1, 'same')))(w).dataSync());
    expect(paddings).toEqual(['SAME']);
  });
});

describe('inference-mode BatchNormalization as a scale + shift (the kernel check\'s batchNormInference route)', () => {
  it('equals the batch norm formula computed in a loop, with and without gamma / beta; TF\'s kernel again when the plan says native', async () => {
    const { applyKernelPlan } = await import('../src/fast-kernels.js');
    const { state } = await import('../src/kernels/state.js');
    const hostPlan = (await initBackend()).kernelPlan;
    try {
      for (const [center, scale] of [[true, true], [false, false]] as const) {
        const layer = tf.layers.batchNormalization({ epsilon: 1e-3, center, scale, inputShape: [3, 2, 4] });
        const model = tf.sequential({ layers: [layer] });
        const c = 4;
        const w = { gamma: randomArray(c, 1).map((v) => 1 + v), beta: randomArray(c, 2), mean: randomArray(c, 3), variance: randomArray(c, 4).map((v) => 1.5 + v) };
        layer.setWeights([...(scale ? [tf.tensor1d(w.gamma)] : []), ...(center ? [tf.tensor1d(w.beta)] : []), tf.tensor1d(w.mean), tf.tensor1d(w.variance)]);
        const xs = randomArray(2 * 3 * 2 * c, 5).map((v) => 3 * v);
        const want = xs.map((v, i) => {
          const k = i % c;
          return ((scale ? w.gamma[k]! : 1) * (v - w.mean[k]!)) / Math.sqrt(w.variance[k]! + 1e-3) + (center ? w.beta[k]! : 0);
        });
        for (const route of ['affine', 'native'] as const) {
          applyKernelPlan({ routes: {}, eigenFilterGradient: false, batchNormInference: route });
          expect(state.batchNormInferenceAffine).toBe(route === 'affine');
          const got = tf.tidy(() => (model.predict(tf.tensor4d(xs, [2, 3, 2, c])) as tf.Tensor).dataSync());
          expect(maxRelErr(got, Float32Array.from(want)), `${route} center=${center} scale=${scale}`).toBeLessThan(1e-5);
        }
        model.dispose();
      }
    } finally {
      if (hostPlan) applyKernelPlan(hostPlan); // this host's own routes back for the other tests
    }
  });
});
