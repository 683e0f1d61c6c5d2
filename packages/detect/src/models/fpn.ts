/**
 * Feature Pyramid Network (torchvision `FeaturePyramidNetwork` + `LastLevelP6P7`) built from
 * standard tfjs layers so the detector stays a serialisable LayersModel (which
 * `refocus`/`fuse` from @refconv/core rewrite by config).
 */
import * as tf from '@tensorflow/tfjs';

/** torchvision's FPN init, `kaiming_uniform_(a=1)`: uniform with limit sqrt(3 / fan_in). */
const kaimingUniformA1 = (seed?: number) => tf.initializers.varianceScaling({ scale: 1, mode: 'fanIn', distribution: 'uniform', seed });

/**
 * P3..P7 from C3..C5: lateral 1x1 convs, nearest 2x top-down upsampling and addition,
 * 3x3 output convs, then P6 = conv3x3/2(P5) and P7 = conv3x3/2(relu(P6)).
 * Requires C(k) to be exactly twice the size of C(k+1), which holds for inputs padded to /32.
 * @param features `[C3, C4, C5]`
 * @returns `[P3, P4, P5, P6, P7]`, each with `channels` channels
 */
export function fpnP3P7(features: tf.SymbolicTensor[], channels: number, seed = 0): tf.SymbolicTensor[] {
  if (features.length !== 3) throw new Error(`fpnP3P7: expected 3 feature maps (C3, C4, C5), got ${features.length}`);
  const conv = (name: string, kernelSize: number, strides = 1, s = 0) =>
    tf.layers.conv2d({ filters: channels, kernelSize, strides, padding: 'same', kernelInitializer: kaimingUniformA1(seed + s), biasInitializer: 'zeros', name });
  const laterals = features.map((c, i) => conv(`fpn_inner${i + 3}`, 1, 1, i).apply(c) as tf.SymbolicTensor);
  const merged: tf.SymbolicTensor[] = [laterals[2]!];
  for (let i = 1; i >= 0; i--) {
    const up = tf.layers.upSampling2d({ size: [2, 2], interpolation: 'nearest', name: `fpn_up${i + 4}` }).apply(merged[0]!) as tf.SymbolicTensor;
    merged.unshift(tf.layers.add({ name: `fpn_merge${i + 3}` }).apply([laterals[i]!, up]) as tf.SymbolicTensor);
  }
  const outs = merged.map((m, i) => conv(`fpn_layer${i + 3}`, 3, 1, 10 + i).apply(m) as tf.SymbolicTensor);
  const p6 = conv('fpn_p6', 3, 2, 20).apply(outs[2]!) as tf.SymbolicTensor;
  const p7 = conv('fpn_p7', 3, 2, 21).apply(tf.layers.reLU({ name: 'fpn_p6_relu' }).apply(p6)) as tf.SymbolicTensor;
  return [...outs, p6, p7];
}
