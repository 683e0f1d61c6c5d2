/**
 * Child process of fullwidth.test.ts: full-width ResNet on the default backend (whatever
 * initBackend() and the kernel self-check chose on this host). A crash here (e.g. SIGFPE inside a
 * native kernel) fails the test with the signal instead of killing the test runner.
 *
 * Usage: run.ts FIXTURE.json   -> prints one JSON line: backend, eval-mode logits, and for an
 * eval-mode (frozen BN) and a train-mode step the loss and per-parameter gradient norms and
 * projections (the fixture's fields).
 */
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { describeBackend, encodeSafetensors, initBackend } from '@refconv/core';
import { createModel, loadTorchWeights } from '../../src/index.js';
import { torchSlots } from '../../src/torch-weights.js';
import { stream, valueOf } from './streams.js';

interface Fixture { arch: string; labels: number[]; layout: Array<{ key: string; shape: number[] }> }

const fixture = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8')) as Fixture;
const info = await initBackend();
if (process.env.REFCONV_TEST_FAULT === 'conv1x1-input-grad-512') injectFault();
const model = createModel(fixture.arch, { numClasses: 1000, inputSize: 224 });
// A torchvision-format state dict (names and shapes from torchvision itself), loaded strictly.
const tensors = Object.fromEntries(fixture.layout.map(({ key, shape }) => [key, { shape, data: valueOf(key, shape) }]));
loadTorchWeights(model, encodeSafetensors(tensors), { strict: true });

const nchw = tf.tensor4d(Float32Array.from(stream('input', 2 * 3 * 224 * 224)), [2, 3, 224, 224]);
const x = tf.transpose(nchw, [0, 2, 3, 1]);
const logits = (model.predict(x) as tf.Tensor).arraySync() as number[][];

const onehot = tf.oneHot(tf.tensor1d(fixture.labels, 'int32'), 1000);
const slots = torchSlots(model);

/** One step's loss and per-parameter gradient norm and projections (PyTorch layout). */
function step(training: boolean) {
  const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(onehot, model.apply(x, { training }) as tf.Tensor) as tf.Scalar);
  const out: Record<string, { norm: number; projections: number[] }> = {};
  for (const [key, slot] of slots) {
    const variable = slot.layer.weights[slot.index]!;
    const g = variable.trainable ? grads[variable.name] : undefined;
    if (!g) continue;
    const data = tf.tidy(() => slot.toTorch(g)).dataSync();
    let norm = 0;
    for (let i = 0; i < data.length; i++) norm += data[i]! * data[i]!;
    const projections = [0, 1, 2, 3].map((k) => {
      const r = stream(`proj/${k}/${key}`, data.length);
      let dot = 0;
      for (let i = 0; i < data.length; i++) dot += data[i]! * r[i]!;
      return dot;
    });
    out[key] = { norm: Math.sqrt(norm), projections };
  }
  const loss = value.dataSync()[0]!;
  tf.dispose([value, ...Object.values(grads)]);
  return { loss, grads: out };
}
const steps = { eval: step(false), train: step(true) };
process.stdout.write(`${JSON.stringify({ backend: describeBackend(info), logits, steps })}\n`);

/**
 * For the test that proves the gradient check can fail: the kind of bug seen on one AVX-512 host
 * (oneDNN's 1x1 input gradient a few % off at some input-channel counts), made on purpose.
 */
function injectFault(): void {
  const original = tf.getKernel('Conv2DBackpropInput', 'tensorflow')!;
  tf.unregisterKernel('Conv2DBackpropInput', 'tensorflow');
  tf.registerKernel({
    ...original,
    kernelFunc: (args) => {
      const dx = original.kernelFunc(args) as tf.Tensor;
      const filter = (args.inputs as { filter: tf.Tensor }).filter;
      if (filter.shape[0] !== 1 || filter.shape[1] !== 1 || filter.shape[2] !== 512) return dx;
      return tf.tidy(() => {
        const mask = tf.tensor1d(Array.from({ length: dx.size }, (_, i) => (i % 3 === 0 ? 1.03 : 1)));
        return tf.mul(dx, tf.reshape(mask, dx.shape));
      });
    },
  });
}
