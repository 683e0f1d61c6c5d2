import * as tf from '@tensorflow/tfjs';
import { featureInfo } from '@refconv/backbones';
import { describe, expect, it } from 'vitest';
import { segCrossEntropy } from '../src/loss.js';
import { backbonesFactory, createSegmenter, type SegmenterSpec } from '../src/model/segmenter.js';
import { enableDilatedConvGradients } from '@refconv/core';

describe('segmenters on @refconv/backbones ResNet-18 (width 0.25)', () => {
  enableDilatedConvGradients();
  for (const os of [8, 16] as const) {
    it(`OS${os}: C5 at stride ${os}, V3+ logits at input size, one training step gives finite gradients`, () => {
      const spec: SegmenterSpec = { arch: 'deeplabv3plus', backbone: 'resnet18', backboneWidth: 0.25, outputStride: os, numClasses: 5, channels: 16, lowLevelChannels: 8, dropout: 0.1, aux: true };
      const bb = backbonesFactory(spec, [64, 96]);
      const strides = featureInfo(bb).map((f) => f.stride);
      expect(strides).toEqual(os === 16 ? [4, 8, 16, 16] : [4, 8, 8, 8]);
      bb.dispose();
      const model = createSegmenter(spec, [64, 96]);
      const x = tf.randomNormal([2, 64, 96, 3]);
      const y = tf.randomUniform([2, 64, 96], 0, 5, 'int32') as tf.Tensor3D;
      const { value, grads } = tf.variableGrads(() => {
        const [main, aux] = model.apply(x, { training: true }) as tf.Tensor4D[];
        expect(main!.shape).toEqual([2, 64, 96, 5]);
        return tf.add(segCrossEntropy(main!, y), tf.mul(0.5, segCrossEntropy(aux!, y))) as tf.Scalar;
      }, model.trainableWeights.map((v) => v.read() as tf.Variable));
      expect(Number.isFinite(value.dataSync()[0]!)).toBe(true);
      for (const g of Object.values(grads)) expect(Number.isFinite(tf.sum(tf.abs(g)).dataSync()[0]!)).toBe(true);
      tf.dispose([x, y, value, ...Object.values(grads)]);
      model.dispose();
    });
  }
});
