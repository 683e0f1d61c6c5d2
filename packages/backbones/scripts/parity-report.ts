/**
 * `nx run backbones:parity`: prints, for every committed PyTorch fixture, the relative error
 * max|ours - torch| / max|torch| of the eval-mode logits (and C2..C5 features where recorded,
 * and after `fuse` for the official RefConv checkpoints). The tests assert < 1e-4; this shows
 * the actual values.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describeBackend, fuse, initBackend } from '@refconv/core';
import { createModel, loadTorchWeights } from '../src/index.js';
import { FIXTURES, loadCases, readTensor, relativeError } from '../test/helpers.js';

function outputs(model: tf.LayersModel, x: tf.Tensor): tf.Tensor[] {
  const y = model.predict(x);
  return Array.isArray(y) ? y : [y];
}

async function main(): Promise<void> {
  await initBackend();
  console.log(describeBackend());
  console.log(`${'case'.padEnd(30)} ${'arch'.padEnd(20)} ${'logits'.padStart(9)}  features C2..C5 / fused`);
  for (const [name, c] of Object.entries(loadCases())) {
    const { arch, ...opts } = c.options;
    const x = readTensor(c.io, 'input_nchw', true);
    const plain = createModel(arch, opts);
    const { model } = loadTorchWeights(plain, path.join(FIXTURES, c.weights));
    const [logits] = outputs(model, x);
    const want = readTensor(c.io, 'logits');
    const extra: string[] = [];
    if (c.features) {
      const fm = createModel(arch, { ...opts, features: true });
      loadTorchWeights(fm, path.join(FIXTURES, c.weights), { strict: false });
      outputs(fm, x).forEach((o, i) => {
        const w = readTensor(c.io, `C${i + 2}`, true);
        extra.push(relativeError(o, w).toExponential(1));
        tf.dispose([o, w]);
      });
      fm.dispose();
    }
    if (model !== plain) {
      const fused = fuse(model);
      const [f] = outputs(fused, x);
      extra.push(`fused ${relativeError(f!, want).toExponential(1)}`);
      tf.dispose(f!);
      fused.dispose();
      model.dispose();
    }
    console.log(`${name.padEnd(30)} ${arch.padEnd(20)} ${relativeError(logits!, want).toExponential(1).padStart(9)}  ${extra.join(' ')}`);
    tf.dispose([x, logits!, want]);
    plain.dispose();
  }
}

main().catch((e: unknown) => {
  console.error((e as Error).message);
  process.exit(1);
});
