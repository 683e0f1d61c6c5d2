import * as tf from '@tensorflow/tfjs';
import { readSafetensors } from '@refconv/core';
import { describe, expect, it } from 'vitest';
import { segCrossEntropy } from '../src/loss.js';
import { asppRates, buildSegmenter } from '../src/model/deeplab.js';
import { enableDilatedConvGradients } from '@refconv/core';
import { tinyBackbone } from './tiny-backbone.js';

type Arr = { shape: number[]; data: ArrayLike<number> };
const fixture = (name: string) => readSafetensors(new URL(`./fixtures/${name}`, import.meta.url).pathname) as unknown as Map<string, Arr>;
const nchwToNhwc = (t: Arr) => tf.transpose(tf.tensor4d(Array.from(t.data), t.shape as [number, number, number, number]), [0, 2, 3, 1]);
const oihwToHwio = (t: Arr) => tf.transpose(tf.tensor4d(Array.from(t.data), t.shape as [number, number, number, number]), [2, 3, 1, 0]);

describe('DeepLabV3 head vs torchvision (tools/ref_deeplab.py)', () => {
  it('ASPP + head logits match torchvision in eval mode', () => {
    const ref = fixture('deeplab_head.safetensors');
    const input = ref.get('input')!;
    const identity = (() => {
      const x = tf.input({ shape: [null, null, input.shape[1]!] });
      const y = tf.layers.activation({ activation: 'linear', name: 'id' }).apply(x) as tf.SymbolicTensor;
      return tf.model({ inputs: x, outputs: y, name: 'backbone' });
    })();
    const model = buildSegmenter({ arch: 'deeplabv3', numClasses: 5, backbone: identity, channels: 16, inputChannels: input.shape[1]! });
    const bn = (layer: string, prefix: string) => [
      [`${layer}/gamma`, `${prefix}.weight`],
      [`${layer}/beta`, `${prefix}.bias`],
      [`${layer}/moving_mean`, `${prefix}.running_mean`],
      [`${layer}/moving_variance`, `${prefix}.running_var`],
    ];
    const names: string[][] = [
      ['aspp.b0.conv/kernel', '0.convs.0.0.weight'], ...bn('aspp.b0.bn', '0.convs.0.1'),
      ['aspp.b1.conv/kernel', '0.convs.1.0.weight'], ...bn('aspp.b1.bn', '0.convs.1.1'),
      ['aspp.b2.conv/kernel', '0.convs.2.0.weight'], ...bn('aspp.b2.bn', '0.convs.2.1'),
      ['aspp.b3.conv/kernel', '0.convs.3.0.weight'], ...bn('aspp.b3.bn', '0.convs.3.1'),
      ['aspp.pool.conv/kernel', '0.convs.4.1.weight'], ...bn('aspp.pool.bn', '0.convs.4.2'),
      ['aspp.project.conv/kernel', '0.project.0.weight'], ...bn('aspp.project.bn', '0.project.1'),
      ['head.conv/kernel', '1.weight'], ...bn('head.bn', '2'),
      ['head.cls/kernel', '4.weight'], ['head.cls/bias', '4.bias'],
    ];
    const byName = new Map(model.weights.map((w) => [w.originalName, w]));
    expect(byName.size).toBe(names.length);
    for (const [mine, theirs] of names) {
      const t = ref.get(theirs!)!;
      const v = byName.get(mine!);
      if (!v) throw new Error(`model has no weight ${mine}`);
      v.write(t.shape.length === 4 ? oihwToHwio(t) : tf.tensor(Array.from(t.data), t.shape));
    }
    const out = [model.predict(nchwToNhwc(input)) as tf.Tensor];
    const expected = nchwToNhwc(ref.get('output')!);
    const err = tf.max(tf.abs(tf.sub(out[0]!, expected))).dataSync()[0]!;
    const scale = tf.max(tf.abs(expected)).dataSync()[0]!;
    expect(err / scale).toBeLessThan(1e-4);
  });

  it('uses rates 6/12/18 at output stride 16 and 12/24/36 at 8', () => {
    expect(asppRates(16)).toEqual([6, 12, 18]);
    expect(asppRates(8)).toEqual([12, 24, 36]);
    const m = buildSegmenter({ arch: 'deeplabv3', numClasses: 3, backbone: tinyBackbone(8), outputStride: 8, channels: 8 });
    const rates = [1, 2, 3].map((i) => (m.getLayer(`aspp.b${i}.conv`).getConfig() as { dilationRate: number[] }).dilationRate[0]);
    expect(rates).toEqual([12, 24, 36]);
  });
});

describe('segmenter shapes, training step and memory', () => {
  enableDilatedConvGradients();
  for (const arch of ['deeplabv3', 'deeplabv3plus'] as const) {
    for (const os of [8, 16] as const) {
      it(`${arch} OS${os}: logits at input size for two input sizes, aux head, gradients for every weight`, () => {
        const model = buildSegmenter({ arch, numClasses: 4, backbone: tinyBackbone(os), outputStride: os, channels: 8, lowLevelChannels: 4, aux: true });
        for (const [h, w] of [[32, 48], [40, 24]]) {
          const out = model.predict(tf.zeros([1, h, w, 3])) as tf.Tensor[];
          expect(out.map((t) => t.shape)).toEqual([[1, h, w, 4], [1, h, w, 4]]);
          tf.dispose(out);
        }
        const x = tf.randomNormal([2, 32, 32, 3]);
        const y = tf.randomUniform([2, 32, 32], 0, 4, 'int32') as tf.Tensor3D;
        const { value, grads } = tf.variableGrads(() => {
          const [main, aux] = model.apply(x, { training: true }) as tf.Tensor4D[];
          return tf.add(segCrossEntropy(main!, y), tf.mul(0.4, segCrossEntropy(aux!, y))) as tf.Scalar;
        }, model.trainableWeights.map((v) => v.read() as tf.Variable));
        expect(Number.isFinite(value.dataSync()[0]!)).toBe(true);
        expect(Object.keys(grads).length).toBe(model.trainableWeights.length);
        tf.dispose([x, y, value, ...Object.values(grads)]);
      });
    }
  }

  it('forward passes do not leak tensors', () => {
    const model = buildSegmenter({ arch: 'deeplabv3plus', numClasses: 3, backbone: tinyBackbone(16), channels: 8 });
    const x = tf.zeros([1, 32, 32, 3]);
    tf.dispose(model.predict(x) as tf.Tensor);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) tf.dispose(model.predict(x) as tf.Tensor);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('segCrossEntropy vs F.cross_entropy(ignore_index=255)', () => {
  it('matches PyTorch with and without an aux term', () => {
    const ref = fixture('cross_entropy.safetensors');
    const logits = nchwToNhwc(ref.get('logits')!) as tf.Tensor4D;
    const aux = nchwToNhwc(ref.get('aux')!) as tf.Tensor4D;
    const l = ref.get('labels')!;
    const labels = tf.tensor3d(Array.from(l.data), l.shape as [number, number, number], 'int32');
    const loss = segCrossEntropy(logits, labels).dataSync()[0]!;
    expect(loss).toBeCloseTo(ref.get('loss')!.data[0]!, 5);
    const total = tf.add(segCrossEntropy(logits, labels), tf.mul(0.4, segCrossEntropy(aux, labels))).dataSync()[0]!;
    expect(total).toBeCloseTo(ref.get('loss_with_aux')!.data[0]!, 5);
  });
  it('gives 0 for an all-ignore batch and rejects mismatched labels', () => {
    expect(segCrossEntropy(tf.zeros([1, 2, 2, 3]), tf.fill([1, 2, 2], 255, 'int32') as tf.Tensor3D).dataSync()[0]).toBe(0);
    expect(() => segCrossEntropy(tf.zeros([1, 2, 2, 3]), tf.zeros([1, 3, 2], 'int32'))).toThrow(/labels must be \[1, 2, 2\]/);
  });
});
