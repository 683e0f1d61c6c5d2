/**
 * `nx run deploy:export -- --checkpoint C --out model.onnx [--layout NCHW|NHWC] [--mean ..] [--std ..] [--resize N] [--size H [W]] [--json]`:
 * a classify checkpoint (baseline, RefConv or fused) fused with BN folding and written as ONNX,
 * then checked: onnxruntime-node's logits vs tfjs' on a random batch of 2. A `@refconv/detect` or
 * `@refconv/segment` checkpoint (recognised from its stored model description) is exported as its
 * network up to the raw outputs at `--size` (Faster R-CNN's box head as a second file,
 * `<out>.box_head.onnx`), every output checked the same way.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describeBackend, initBackend, type BackendName } from '@refconv/core';
import { createCli, resolvePaths, writeFileAtomic } from '@refconv/engine';
import { exportClassifierCheckpoint } from '../classifier.js';
import { checkpointTask, exportDetectorCheckpoint, exportSegmenterCheckpoint, type ExportedNetworks } from '../networks.js';
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
    .option('size', { type: 'number', array: true, describe: 'detector / segmenter checkpoints: input H [W] of the exported network (detectors: multiples of 32, required; segmenters: default the training crop)' })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON object on stdout' })
    .option('backend', { choices: ['auto', 'tensorflow', 'cpu', 'wasm'] as const, default: 'auto' as const })
    .middleware(resolvePaths(['checkpoint', 'out']))
    .parseAsync();
  const info = await initBackend(a.backend as BackendName);
  if (!a.json) console.log(describeBackend(info));
  if (!fs.existsSync(a.checkpoint)) throw new Error(`checkpoint ${a.checkpoint} does not exist`);
  const task = checkpointTask(a.checkpoint);
  if (task !== 'classify') {
    const size = a.size ? ([a.size[0], a.size[1] ?? a.size[0]] as [number, number]) : undefined;
    const ex = task === 'detect' ? exportDetectorCheckpoint(a.checkpoint, { size, layout: a.layout }) : exportSegmenterCheckpoint(a.checkpoint, { size, layout: a.layout });
    await writeNetworks(ex, a.out, a.layout, a.json);
    return;
  }
  if (a.size) throw new Error('--size is for detector / segmenter checkpoints; a classifier keeps its input size');
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

/** Writes each graph (the box head next to `out`), then checks every output in onnxruntime vs tfjs on a random batch of 2. */
async function writeNetworks(ex: ExportedNetworks, out: string, layout: 'NCHW' | 'NHWC', json: boolean): Promise<void> {
  const files: { part: string; file: string; bytes: number; outputs: string[]; maxRelErrVsTfjs: number }[] = [];
  fs.mkdirSync(path.dirname(out), { recursive: true });
  for (const g of ex.graphs) {
    const file = g.part === 'network' ? out : out.replace(/(\.onnx)?$/, `.${g.part}.onnx`);
    writeFileAtomic(file, Buffer.from(g.bytes));
    const [, h, w, c] = g.model.inputs[0].shape as number[];
    const x = tf.randomNormal([2, h, w, c], 0, 1, 'float32', 1);
    const preds = g.model.predict(x);
    const refs = (Array.isArray(preds) ? preds : [preds]).map((t) => {
      const r = tf.tidy(() => (t.rank === 4 && layout === 'NCHW' ? tf.transpose(t, [0, 3, 1, 2]) : t.clone()));
      const d = (r.dataSync() as Float32Array).slice();
      r.dispose();
      t.dispose();
      return d;
    });
    const feed = layout === 'NCHW' ? tf.tidy(() => tf.transpose(x, [0, 3, 1, 2]).dataSync() as Float32Array).slice() : (x.dataSync() as Float32Array).slice();
    x.dispose();
    const session = await createSession(file);
    const got = await runSession(session, feed, layout === 'NCHW' ? [2, c, h, w] : [2, h, w, c]);
    await session.release();
    let worst = 0;
    g.outputNames.forEach((n, i) => {
      let num = 0;
      let den = 0;
      const d = got[n].data;
      for (let j = 0; j < refs[i].length; j++) {
        num = Math.max(num, Math.abs(d[j] - refs[i][j]));
        den = Math.max(den, Math.abs(refs[i][j]));
      }
      worst = Math.max(worst, den > 0 ? num / den : num);
    });
    g.model.dispose();
    if (worst > 1e-4) throw new Error(`${file}: onnxruntime's outputs differ from tfjs' by ${worst.toExponential(2)} (relative), above 1e-4`);
    files.push({ part: g.part, file, bytes: g.bytes.byteLength, outputs: g.outputNames, maxRelErrVsTfjs: worst });
  }
  const summary = { task: ex.task, kind: ex.kind, refconv: ex.refconv, layout, opset: 17, inputSize: ex.inputSize, classes: ex.metadata.classNames?.length, files };
  if (json) process.stdout.write(JSON.stringify(summary) + '\n');
  else {
    for (const f of files) {
      console.log(`wrote ${f.file} (${(f.bytes / 1e6).toFixed(2)} MB, ${ex.kind} ${f.part}${ex.refconv ? ', RefConv fused' : ''}, ${ex.inputSize.join('x')}, ${layout}, opset 17; outputs ${f.outputs.join(', ')}); onnxruntime vs tfjs max rel err ${f.maxRelErrVsTfjs.toExponential(2)}`);
    }
  }
}

main(process.argv.slice(2)).catch((e: Error) => {
  console.error(`deploy:export failed: ${e.message}`);
  process.exit(1);
});
