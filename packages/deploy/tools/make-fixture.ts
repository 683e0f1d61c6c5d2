/**
 * Writes the small committed fixture the Python reference check reads:
 *   test/fixtures/mobilenet_v3_small.onnx   a fused, BN-folded MobileNetV3-Small (width 0.25, 32 px, 5 classes;
 *                                          HardSwish, squeeze-excitation, depthwise convs) with randomised BN
 *   test/fixtures/mobilenet_v3_small.json  { input: NCHW [2, 3, 32, 32] values, dims, logits: tfjs' output [2, 5] }
 *
 *   cd packages/deploy && node --conditions=@refconv/source --import tsx tools/make-fixture.ts
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createModel } from '@refconv/backbones';
import { fuse, initBackend } from '@refconv/core';
import { exportOnnx } from '../src/index.js';

await initBackend();
const dir = path.join(import.meta.dirname, '..', 'test', 'fixtures');
fs.mkdirSync(dir, { recursive: true });
const model = createModel('mobilenet_v3_small', { inputSize: 32, numClasses: 5, width: 0.25 });
let s = 3;
const rnd = (): number => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
for (const layer of model.layers) {
  if (layer.getClassName() !== 'BatchNormalization') continue;
  layer.setWeights(layer.getWeights().map((w, i) => tf.tensor(Float32Array.from({ length: w.size }, () => (i === 1 || i === 2 ? rnd() - 0.5 : 0.5 + rnd())), w.shape)));
}
const fused = fuse(model, { foldBatchNorm: true });
const bytes = exportOnnx(fused, { metadata: { arch: 'mobilenet_v3_small', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], classNames: ['a', 'b', 'c', 'd', 'e'] } });
fs.writeFileSync(path.join(dir, 'mobilenet_v3_small.onnx'), bytes);
const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 5);
const logits = Array.from((fused.predict(x) as tf.Tensor).dataSync());
const input = Array.from(tf.transpose(x, [0, 3, 1, 2]).dataSync());
fs.writeFileSync(path.join(dir, 'mobilenet_v3_small.json'), JSON.stringify({ dims: [2, 3, 32, 32], input, logits }));
console.log(`wrote ${bytes.byteLength} bytes of ONNX and the tfjs logits to ${dir}`);
