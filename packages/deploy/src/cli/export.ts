/**
 * `nx run deploy:export -- --checkpoint C --out model.onnx [--layout NCHW|NHWC] [--mean ..] [--std ..] [--resize N] [--json]`:
 * a classify checkpoint (baseline, RefConv or fused) fused with BN folding and written as ONNX,
 * then checked: onnxruntime-node's logits vs tfjs' on a random batch of 2.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describeBackend, initBackend, type BackendName } from '@refconv/core';
import { createCli, resolvePaths, writeFileAtomic } from '@refconv/engine';
import { exportClassifierCheckpoint } from '../classifier.js';
import { createSession, runSession } from '../ort.js';

async function main(argv: string[]): Promise<void> {
  const a = await createCli(argv, 'deploy:export')
    .usage('$0 --checkpoint C --out model.onnx')
    .option('checkpoint', { type: 'string', demandOption: true, describe: 'a @refconv/classify checkpoint (.safetensors): baseline, RefConv or fused' })
    .option('out', { type: 'string', demandOption: true, describe: 'ONNX file to write' })
    .option('layout', { choices: ['NCHW', 'NHWC'] as const, default: 'NCHW' as const, describe: 'input layout of the exported graph' })
    .option('mean', { type: 'number', array: true, describe: 'normalisation mean per channel (default ImageNet / Fashion-MNIST)' })
    .option('std', { type: 'number', array: true, describe: 'normalisation std per channel' })
    .option('resize', { type: 'number', describe: 'Resize shorter side before the center crop (default as classify:eval)' })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON object on stdout' })
    .option('backend', { choices: ['auto', 'tensorflow', 'cpu', 'wasm'] as const, default: 'auto' as const })
    .middleware(resolvePaths(['checkpoint', 'out']))
    .parseAsync();
  const info = await initBackend(a.backend as BackendName);
  if (!a.json) console.log(describeBackend(info));
  if (!fs.existsSync(a.checkpoint)) throw new Error(`checkpoint ${a.checkpoint} does not exist`);
  const ex = exportClassifierCheckpoint(a.checkpoint, { layout: a.layout, mean: a.mean, std: a.std, resize: a.resize });
  fs.mkdirSync(path.dirname(a.out), { recursive: true });
  writeFileAtomic(a.out, Buffer.from(ex.bytes));
  // self-check: onnxruntime vs tfjs on a random batch
  const [h, w] = ex.metadata.inputSize!;
  const c = ex.metadata.mean!.length;
  const x = tf.randomNormal([2, h, w, c], 0, 1, 'float32', 1);
  const ref = tf.tidy(() => (ex.model.predict(x) as tf.Tensor).dataSync() as Float32Array).slice();
  const feed = a.layout === 'NCHW' ? tf.tidy(() => tf.transpose(x, [0, 3, 1, 2]).dataSync() as Float32Array).slice() : (x.dataSync() as Float32Array).slice();
  const session = await createSession(a.out);
  const out = await runSession(session, feed, a.layout === 'NCHW' ? [2, c, h, w] : [2, h, w, c]);
  await session.release();
  let num = 0;
  let den = 0;
  const got = out[Object.keys(out)[0]].data;
  for (let i = 0; i < ref.length; i++) {
    num = Math.max(num, Math.abs(got[i] - ref[i]));
    den = Math.max(den, Math.abs(ref[i]));
  }
  const relErr = num / den;
  x.dispose();
  ex.model.dispose();
  const summary = { out: a.out, bytes: ex.bytes.byteLength, arch: ex.arch, sourceKind: ex.kind, layout: a.layout, opset: 17, inputSize: [h, w], classes: ex.metadata.classNames!.length, maxRelErrVsTfjs: relErr };
  if (relErr > 1e-4) throw new Error(`${a.out}: onnxruntime's logits differ from tfjs' by ${relErr.toExponential(2)} (relative), above 1e-4`);
  if (a.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else console.log(`wrote ${a.out} (${(ex.bytes.byteLength / 1e6).toFixed(2)} MB, ${ex.arch}, from a ${ex.kind} checkpoint, ${a.layout}, opset 17); onnxruntime vs tfjs max rel err ${relErr.toExponential(2)}`);
}

main(process.argv.slice(2)).catch((e: Error) => {
  console.error(`deploy:export failed: ${e.message}`);
  process.exit(1);
});
