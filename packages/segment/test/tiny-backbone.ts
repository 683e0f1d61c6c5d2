/**
 * A tiny stand-in feature backbone for tests only (the real ones come from
 * @refconv/backbones): C2..C5 at strides 4, 8, 16, 16|32 with the last stages dilated
 * instead of strided at output stride 16 / 8, as torchvision's `replace_stride_with_dilation`.
 */
import * as tf from '@tensorflow/tfjs';

export function tinyBackbone(outputStride: 8 | 16 = 16, width = 4, name = 'backbone', inputSize: [number | null, number | null] = [null, null]): tf.LayersModel {
  const x = tf.input({ shape: [inputSize[0], inputSize[1], 3] });
  let y = x;
  const feats: tf.SymbolicTensor[] = [];
  // [stride, dilation] of stem, C2, C3, C4, C5
  const plan: [number, number][] =
    outputStride === 16 ? [[2, 1], [2, 1], [2, 1], [2, 1], [1, 2]] : [[2, 1], [2, 1], [2, 1], [1, 2], [1, 4]];
  plan.forEach(([s, d], i) => {
    const conv = tf.layers.conv2d({ name: `${name}.conv${i}`, filters: width * (i + 1), kernelSize: 3, strides: s, dilationRate: d, padding: 'same', useBias: false });
    const bn = tf.layers.batchNormalization({ name: `${name}.bn${i}` });
    y = tf.layers.reLU({ name: `${name}.relu${i}` }).apply(bn.apply(conv.apply(y))) as tf.SymbolicTensor;
    if (i >= 1) feats.push(y);
  });
  return tf.model({ inputs: x, outputs: feats, name });
}
