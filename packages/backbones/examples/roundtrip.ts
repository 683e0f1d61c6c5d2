/**
 * The whole loop on one torchvision checkpoint: load -> refocus -> train -> fuse -> export.
 *
 *   node --conditions=@refconv/source --import tsx examples/roundtrip.ts \
 *     --arch resnet18 --weights resnet18.safetensors --out /tmp/roundtrip [--steps 5] [--input-size 64]
 *
 * Training here runs a few SGD steps on random images with random labels: it only shows the
 * API (classify's train CLI is the real pipeline). Writes to --out:
 *   refconv.safetensors  the refocused model in the official RefConv state-dict format
 *   fused.safetensors    the deployed (fused) model in plain torchvision format
 *   check.safetensors    an input (NCHW) and this model's eval logits, for tools/check_export.py
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { countParams, describeBackend, fuse, initBackend, refocus, writeSafetensors } from '@refconv/core';
import { createModel, exportTorchWeights, listModels, loadTorchWeights } from '../src/index.js';

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

async function main(): Promise<void> {
  const argv = await yargs(hideBin(process.argv))
    .strict()
    .option('arch', { type: 'string', choices: listModels(), demandOption: true })
    .option('weights', { type: 'string', demandOption: true, describe: 'torchvision state dict (.safetensors)' })
    .option('out', { type: 'string', demandOption: true })
    .option('steps', { type: 'number', default: 5 })
    .option('input-size', { type: 'number', default: 64 })
    .option('num-classes', { type: 'number', default: 1000 })
    .parseAsync();
  await initBackend();
  console.log(describeBackend());
  const size = argv['input-size'];

  // 1. torchvision checkpoint -> tfjs model (throws listing any missing / extra / misshaped tensor).
  const pretrained = createModel(argv.arch, { inputSize: size, numClasses: argv['num-classes'] });
  loadTorchWeights(pretrained, argv.weights);

  // 2. Refocus every conv with K >= 3; 'zero' init starts exactly at the pretrained model.
  const model = refocus(pretrained, { mapK: 3, init: 'zero' });
  const x = tf.randomNormal([2, size, size, 3], 0, 1, 'float32', 1);
  const before = pretrained.predict(x) as tf.Tensor;
  const refocusedOut = model.predict(x) as tf.Tensor;
  console.log(`refocused: ${countParams(model, { trainableOnly: true }).toLocaleString('en-US')} trainable params; |refocused - pretrained| = ${maxAbsDiff(refocusedOut, before).toExponential(2)}`);

  // 3. Train (random data, API demonstration only).
  const n = 8;
  const xs = tf.randomNormal([n, size, size, 3], 0, 1, 'float32', 2);
  const ys = tf.oneHot(tf.randomUniform([n], 0, argv['num-classes'], 'int32', 3) as tf.Tensor1D, argv['num-classes']);
  model.compile({ optimizer: tf.train.momentum(0.01, 0.9), loss: (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.losses.softmaxCrossEntropy(yTrue, yPred) });
  const hist = await model.fit(xs, ys, { epochs: argv.steps, batchSize: n, verbose: 0 });
  console.log(`train loss per step: ${(hist.history.loss as number[]).map((v) => v.toFixed(4)).join(' ')}`);

  // 4. Fuse: plain convs with W_t, same outputs, the pretrained model's parameter count.
  const deployed = fuse(model);
  const trained = model.predict(x) as tf.Tensor;
  const fusedOut = deployed.predict(x) as tf.Tensor;
  console.log(`fused: ${countParams(deployed).toLocaleString('en-US')} params (pretrained ${countParams(pretrained).toLocaleString('en-US')}); |fused - refocused| = ${maxAbsDiff(fusedOut, trained).toExponential(2)}`);

  // 5. Export both forms in PyTorch naming.
  exportTorchWeights(model, path.join(argv.out, 'refconv.safetensors'));
  exportTorchWeights(deployed, path.join(argv.out, 'fused.safetensors'));
  const nchw = tf.transpose(x, [0, 3, 1, 2]);
  writeSafetensors(path.join(argv.out, 'check.safetensors'), {
    input_nchw: { shape: nchw.shape, data: nchw.dataSync() as Float32Array },
    logits: { shape: fusedOut.shape, data: fusedOut.dataSync() as Float32Array },
  }, { arch: argv.arch });
  console.log(`wrote ${argv.out}/{refconv,fused,check}.safetensors`);
  tf.dispose([x, before, refocusedOut, xs, ys, trained, fusedOut, nchw]);
}

main().catch((e: unknown) => {
  console.error((e as Error).message);
  process.exit(1);
});
