/** Custom layers, PyTorch-style padding, serialization and option checking. */
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { fuse, refocus } from '@refconv/core';
import { ChannelShuffle, createModel, featureInfo, HardSigmoid, HardSwish, makeDivisible } from '../src/index.js';
import { conv } from '../src/layers/blocks.js';
import { relativeError, yieldToEventLoop } from './helpers.js';

afterEach(yieldToEventLoop);

describe('activations', () => {
  it('HardSwish / HardSigmoid follow PyTorch (not Keras hard_sigmoid)', () => {
    const xs = [-4, -3, -1.5, 0, 0.5, 3, 4];
    const x = tf.tensor1d(xs);
    const hs = new HardSwish({}).apply(x) as tf.Tensor;
    const hg = new HardSigmoid({}).apply(x) as tf.Tensor;
    // torch: hardsigmoid(x) = 0 if x <= -3, 1 if x >= 3, x/6 + 1/2 otherwise; hardswish = x * hardsigmoid(x)
    const ref = xs.map((v) => (v <= -3 ? 0 : v >= 3 ? 1 : v / 6 + 0.5));
    Array.from(hg.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(ref[i]!, 6));
    Array.from(hs.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(xs[i]! * ref[i]!, 6));
    tf.dispose([x, hs, hg]);
  });

  it("HardSwish's hand-written gradient is PyTorch's hardswish_backward (away from x = +-3)", () => {
    const xs = [-5, -3.5, -2.9, -1, -0.25, 0, 0.7, 2.2, 2.95, 3.1, 6];
    const dys = xs.map((_, i) => 0.5 + 0.25 * i);
    // torch: grad = 0 if x < -3, dy if x > 3, dy * (x / 3 + 0.5) otherwise
    const ref = xs.map((v, i) => dys[i]! * (v < -3 ? 0 : v > 3 ? 1 : v / 3 + 0.5));
    const x = tf.tensor1d(xs);
    const dy = tf.tensor1d(dys);
    const g = tf.grad((xx: tf.Tensor) => new HardSwish({}).apply(xx) as tf.Tensor)(x, dy);
    Array.from(g.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(ref[i]!, 5));
    tf.dispose([x, dy, g]);
  });
});

describe('ChannelShuffle', () => {
  it('puts input channel g*(C/groups) + j at output j*groups + g', () => {
    const x = tf.tensor4d([0, 1, 2, 3, 4, 5], [1, 1, 1, 6]);
    const y = new ChannelShuffle({ groups: 2 }).apply(x) as tf.Tensor;
    expect(Array.from(y.dataSync())).toEqual([0, 3, 1, 4, 2, 5]);
    tf.dispose([x, y]);
  });
});

describe('conv with PyTorch padding', () => {
  /** One conv layer model built through `conv()`; weights from a seeded normal. */
  function single(size: number, spec: Parameters<typeof conv>[1], cin: number): tf.LayersModel {
    const input = tf.input({ shape: [size, size, cin] });
    return tf.model({ inputs: input, outputs: conv(input, spec) });
  }

  for (const [size, stride, dilation, depthwise] of [[7, 2, 1, false], [8, 2, 1, true], [9, 1, 2, false], [10, 1, 4, true], [5, 1, 2, false]] as const) {
    it(`k3 size ${size} stride ${stride} dilation ${dilation}${depthwise ? ' depthwise' : ''} equals an explicitly padded tf conv`, () => {
      const cin = 3;
      const m = single(size, { name: 'c', filters: 3, kernel: 3, stride, dilation, depthwise }, cin);
      const x = tf.randomNormal([2, size, size, cin], 0, 1, 'float32', 1);
      const kernel = m.getLayer('c').getWeights()[0] as tf.Tensor4D;
      const pad = dilation; // PyTorch padding = dilation * (k - 1) / 2
      const padded = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]]) as tf.Tensor4D;
      // Depthwise reference: one regular conv per channel (the native depthwise kernel has no dilation).
      const perChannel = () => tf.concat(tf.split(padded, cin, 3).map((xc, c) =>
        tf.conv2d(xc as tf.Tensor4D, tf.slice(kernel, [0, 0, c, 0], [3, 3, 1, 1]) as tf.Tensor4D, stride, 'valid', 'NHWC', dilation)), 3);
      const want = depthwise ? perChannel() : tf.conv2d(padded, kernel, stride, 'valid', 'NHWC', dilation);
      const got = m.predict(x) as tf.Tensor;
      const expectedSize = Math.floor((size + 2 * pad - dilation * 2 - 1) / stride) + 1;
      expect(got.shape).toEqual([2, expectedSize, expectedSize, 3]);
      expect(relativeError(got, want)).toBeLessThan(1e-5);
      tf.dispose([x, padded, want, got]);
      m.dispose();
    });
  }

  it('dilated convs are trainable (tfjs has no gradient for dilated conv2d itself)', () => {
    const m = single(9, { name: 'c', filters: 2, kernel: 3, dilation: 2 }, 2);
    const x = tf.randomNormal([1, 9, 9, 2]);
    const { grads, value } = tf.variableGrads(() => tf.sum(m.apply(x) as tf.Tensor) as tf.Scalar);
    expect(Object.keys(grads).length).toBe(1);
    tf.dispose([x, value, ...Object.values(grads)]);
    m.dispose();
  });
});

describe('serialization and model surgery', () => {
  for (const arch of ['mobilenet_v3_small', 'shufflenet_v2_x0_5', 'cifar_resnet20']) {
    it(`${arch}: JSON round trip with the custom layers gives the same outputs`, async () => {
      const model = createModel(arch, { inputSize: 40, numClasses: 5, ...(arch === 'shufflenet_v2_x0_5' ? {} : { width: 0.5 }), outputStride: 32 });
      const artifacts: tf.io.ModelArtifacts[] = [];
      await model.save(tf.io.withSaveHandler(async (a) => {
        artifacts.push(a);
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }));
      const back = await tf.loadLayersModel(tf.io.fromMemory(artifacts[0]!));
      const x = tf.randomNormal([1, 40, 40, 3]);
      const a = model.predict(x) as tf.Tensor;
      const b = back.predict(x) as tf.Tensor;
      expect(relativeError(b, a)).toBe(0);
      tf.dispose([x, a, b]);
      model.dispose();
      back.dispose();
    });
  }

  for (const arch of ['mobilenet_v3_small', 'shufflenet_v2_x0_5']) {
    it(`${arch}: refocus (config rewrite through the custom layers) and fuse keep the outputs`, () => {
      const model = createModel(arch, { inputSize: 40, numClasses: 4, ...(arch.startsWith('shufflenet') ? {} : { width: 0.5 }) });
      const ref = refocus(model, { init: 'zero' });
      const trained = refocus(model, { init: 'default', seed: 5 }); // non-zero transforms
      const fused = fuse(trained);
      const x = tf.randomNormal([1, 40, 40, 3]);
      const [a, b] = [model.predict(x) as tf.Tensor, ref.predict(x) as tf.Tensor];
      expect(relativeError(b, a)).toBeLessThan(1e-6); // zero init = the pretrained model
      const [c, d] = [trained.predict(x) as tf.Tensor, fused.predict(x) as tf.Tensor];
      expect(relativeError(c, a)).toBeGreaterThan(1e-3); // the transforms do change the model
      expect(relativeError(d, c)).toBeLessThan(1e-5);
      tf.dispose([x, a, b, c, d]);
      [model, ref, trained, fused].forEach((m) => m.dispose());
    });
  }

  it('a dilated (outputStride 8) feature model refocuses and fuses back to the same outputs', () => {
    const model = createModel('resnet18', { inputSize: 48, width: 0.25, features: true, outputStride: 8 });
    const ref = refocus(model, { init: 'default', seed: 3 });
    const fused = fuse(ref);
    const x = tf.randomNormal([1, 48, 48, 3]);
    const a = ref.predict(x) as tf.Tensor[];
    const b = fused.predict(x) as tf.Tensor[];
    expect(featureInfo(fused).map((f) => f.stride)).toEqual([4, 8, 8, 8]);
    a.forEach((t, i) => expect(relativeError(b[i]!, t)).toBeLessThan(1e-5));
    tf.dispose([x, ...a, ...b]);
    [model, ref, fused].forEach((m) => m.dispose());
  });
});

describe('createModel options', () => {
  it('rejects unknown architectures and options with the valid choices', () => {
    expect(() => createModel('resnet19')).toThrow(/unknown architecture 'resnet19'; available: resnet18, .*mobilenet_v2/);
    expect(() => createModel('resnet18', { numClass: 3 } as never)).toThrow(/unknown option\(s\) numClass/);
    expect(() => createModel('resnet18', { outputStride: 4 as never })).toThrow(/outputStride must be 8, 16 or 32, got 4/);
    expect(() => createModel('cifar_resnet20', { outputStride: 16 })).toThrow(/not supported by this architecture/);
    expect(() => createModel('resnet18', { width: 0.3 })).toThrow(/width 0.3 gives 19.2 base channels/);
    expect(() => createModel('shufflenet_v2_x1_0', { width: 0.5 })).toThrow(/width option is not supported/);
    expect(() => createModel('resnet18', { inputSize: 0 })).toThrow(/inputSize must be positive integers/);
  });

  it('accepts 1-channel inputs and non-square sizes', () => {
    const m = createModel('mobilenet_v2_cifar', { inChannels: 1, inputSize: [28, 20] });
    expect(m.inputs[0]!.shape).toEqual([null, 28, 20, 1]);
    expect(m.outputs[0]!.shape).toEqual([null, 10]);
    m.dispose();
  });

  it('makeDivisible matches torchvision _make_divisible', () => {
    // Values from torchvision: _make_divisible(v, 8) for these v.
    expect([32 * 0.25, 16 * 0.25, 24 * 0.35, 960 * 0.75, 1, 11, 12, 100].map((v) => makeDivisible(v))).toEqual([8, 8, 8, 720, 8, 16, 16, 104]);
  });
});
