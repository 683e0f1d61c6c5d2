/** The tiny fixed-weight model of tools/make_fixtures.py, built in tfjs with the fixture's weights. */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';

export const attacksFixture = JSON.parse(fs.readFileSync(new URL('../fixtures/attacks.json', import.meta.url), 'utf8'));

export function fixtureModel(): tf.LayersModel {
  const fx = attacksFixture;
  const [, h, w, c] = fx.shape;
  const input = tf.input({ shape: [h, w, c] });
  let t = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'conv' }).apply(input) as tf.SymbolicTensor;
  t = tf.layers.batchNormalization({ name: 'bn', epsilon: 1e-3 }).apply(t) as tf.SymbolicTensor;
  t = tf.layers.reLU().apply(t) as tf.SymbolicTensor;
  t = tf.layers.globalAveragePooling2d({}).apply(t) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 3, name: 'fc' }).apply(t) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  const W = fx.weights;
  model.getLayer('conv').setWeights([tf.tensor4d(W['conv/kernel'], [3, 3, 2, 4]), tf.tensor1d(W['conv/bias'])]);
  model.getLayer('bn').setWeights(['bn/gamma', 'bn/beta', 'bn/moving_mean', 'bn/moving_variance'].map((k) => tf.tensor1d(W[k])));
  model.getLayer('fc').setWeights([tf.tensor2d(W['fc/kernel'], [4, 3]), tf.tensor1d(W['fc/bias'])]);
  return model;
}

export function fixtureBatch() {
  const fx = attacksFixture;
  return { x: new Float32Array(fx.x), labels: Int32Array.from(fx.labels), n: fx.shape[0], size: fx.shape[1], channels: fx.shape[3], mean: fx.mean, std: fx.std, indices: [] as number[] };
}
