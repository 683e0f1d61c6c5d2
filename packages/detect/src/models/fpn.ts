/**
 * Feature Pyramid Network (torchvision `FeaturePyramidNetwork` with `LastLevelP6P7` for RetinaNet
 * or `LastLevelMaxPool` for Faster R-CNN) built from standard tfjs layers, so the detector stays a
 * serialisable LayersModel (which `refocus`/`fuse` from @refconv/core rewrite by config).
 */
import * as tf from '@tensorflow/tfjs';

/** torchvision's FPN init, `kaiming_uniform_(a=1)`: uniform with limit sqrt(3 / fan_in). */
const kaimingUniformA1 = (seed?: number) => tf.initializers.varianceScaling({ scale: 1, mode: 'fanIn', distribution: 'uniform', seed });

/**
 * Top-down pathway: lateral 1x1 convs, nearest 2x upsampling and addition, 3x3 output convs.
 * Requires each map to be exactly twice the size of the next, which holds for inputs padded to /32.
 * @param features `[C_first, ..., C5]`
 * @param firstLevel pyramid level of `features[0]` (2 for C2, 3 for C3)
 * @returns `[P_first, ..., P5]`
 */
function topDown(features: tf.SymbolicTensor[], firstLevel: number, channels: number, seed: number): tf.SymbolicTensor[] {
  const conv = (name: string, kernelSize: number, s: number) =>
    tf.layers.conv2d({ filters: channels, kernelSize, padding: 'same', kernelInitializer: kaimingUniformA1(seed + s), biasInitializer: 'zeros', name });
  const laterals = features.map((c, i) => conv(`fpn_inner${i + firstLevel}`, 1, i).apply(c) as tf.SymbolicTensor);
  const merged: tf.SymbolicTensor[] = [laterals[laterals.length - 1]!];
  for (let i = laterals.length - 2; i >= 0; i--) {
    const up = tf.layers.upSampling2d({ size: [2, 2], interpolation: 'nearest', name: `fpn_up${i + firstLevel + 1}` }).apply(merged[0]!) as tf.SymbolicTensor;
    merged.unshift(tf.layers.add({ name: `fpn_merge${i + firstLevel}` }).apply([laterals[i]!, up]) as tf.SymbolicTensor);
  }
  return merged.map((m, i) => conv(`fpn_layer${i + firstLevel}`, 3, 10 + i).apply(m) as tf.SymbolicTensor);
}

/**
 * RetinaNet's pyramid P3..P7 from C3..C5: P6 = conv3x3/2(P5), P7 = conv3x3/2(relu(P6)).
 * @param features `[C3, C4, C5]`
 */
export function fpnP3P7(features: tf.SymbolicTensor[], channels: number, seed = 0): tf.SymbolicTensor[] {
  if (features.length !== 3) throw new Error(`fpnP3P7: expected 3 feature maps (C3, C4, C5), got ${features.length}`);
  const outs = topDown(features, 3, channels, seed);
  const conv = (name: string, s: number) =>
    tf.layers.conv2d({ filters: channels, kernelSize: 3, strides: 2, padding: 'same', kernelInitializer: kaimingUniformA1(seed + s), biasInitializer: 'zeros', name });
  const p6 = conv('fpn_p6', 20).apply(outs[2]!) as tf.SymbolicTensor;
  const p7 = conv('fpn_p7', 21).apply(tf.layers.reLU({ name: 'fpn_p6_relu' }).apply(p6)) as tf.SymbolicTensor;
  return [...outs, p6, p7];
}

/**
 * Faster R-CNN's pyramid P2..P5 plus `pool` = max_pool(P5, kernel 1, stride 2) (`LastLevelMaxPool`).
 * @param features `[C2, C3, C4, C5]`
 */
export function fpnP2P6(features: tf.SymbolicTensor[], channels: number, seed = 0): tf.SymbolicTensor[] {
  if (features.length !== 4) throw new Error(`fpnP2P6: expected 4 feature maps (C2..C5), got ${features.length}`);
  const outs = topDown(features, 2, channels, seed);
  const pool = tf.layers.maxPooling2d({ poolSize: 1, strides: 2, padding: 'valid', name: 'fpn_pool' }).apply(outs[3]!) as tf.SymbolicTensor;
  return [...outs, pool];
}
