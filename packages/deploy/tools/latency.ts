/**
 * A first look at inference speed (not issue 17's bench:infer): the same fused, BN-folded model in
 * tfjs-node and, exported, in onnxruntime-node (CPU, graph optimisation 'all', --threads intra-op
 * threads), interleaved round by round; median batch-1 latency and batch-B throughput.
 *
 *   cd packages/deploy && node --conditions=@refconv/source --import tsx tools/latency.ts \
 *     --archs resnet18 mobilenet_v2 --size 224 --batch 32 --rounds 5 --threads 2
 */
import * as tf from '@tensorflow/tfjs';
import { createModel } from '@refconv/backbones';
import { describeBackend, fuse, initBackend } from '@refconv/core';
import { createCli } from '@refconv/engine';
import { createSession, exportOnnx, runSession } from '../src/index.js';

const a = await createCli(process.argv.slice(2), 'deploy latency')
  .option('archs', { type: 'string', array: true, default: ['resnet18', 'mobilenet_v2'] })
  .option('size', { type: 'number', default: 224 })
  .option('batch', { type: 'number', default: 32 })
  .option('rounds', { type: 'number', default: 5 })
  .option('threads', { type: 'number', default: 2 })
  .parseAsync();
console.log(describeBackend(await initBackend()));
const median = (v: number[]): number => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];
console.log(`| arch | runtime | batch 1 latency (ms) | batch ${a.batch} images/s |\n|---|---|---|---|`);
for (const arch of a.archs) {
  const fused = fuse(createModel(arch, { inputSize: a.size }), { foldBatchNorm: true });
  const session = await createSession(exportOnnx(fused), { intraOpThreads: a.threads });
  const t: Record<string, number[]> = { tf1: [], tfB: [], ort1: [], ortB: [] };
  const x1 = tf.randomNormal([1, a.size, a.size, 3]);
  const xB = tf.randomNormal([a.batch, a.size, a.size, 3]);
  const n1 = tf.tidy(() => tf.transpose(x1, [0, 3, 1, 2]).dataSync() as Float32Array).slice();
  const nB = tf.tidy(() => tf.transpose(xB, [0, 3, 1, 2]).dataSync() as Float32Array).slice();
  const tfRun = (x: tf.Tensor): void => tf.tidy(() => void (fused.predict(x) as tf.Tensor).dataSync());
  // warm-up
  tfRun(x1); tfRun(xB);
  await runSession(session, n1, [1, 3, a.size, a.size]);
  await runSession(session, nB, [a.batch, 3, a.size, a.size]);
  for (let r = 0; r < a.rounds; r++) {
    let s = performance.now(); tfRun(x1); t.tf1.push(performance.now() - s);
    s = performance.now(); await runSession(session, n1, [1, 3, a.size, a.size]); t.ort1.push(performance.now() - s);
    s = performance.now(); tfRun(xB); t.tfB.push(performance.now() - s);
    s = performance.now(); await runSession(session, nB, [a.batch, 3, a.size, a.size]); t.ortB.push(performance.now() - s);
  }
  console.log(`| ${arch} | tfjs-node (fused) | ${median(t.tf1).toFixed(1)} | ${((1000 * a.batch) / median(t.tfB)).toFixed(1)} |`);
  console.log(`| ${arch} | onnxruntime-node ${a.threads} threads | ${median(t.ort1).toFixed(1)} | ${((1000 * a.batch) / median(t.ortB)).toFixed(1)} |`);
  x1.dispose(); xB.dispose(); fused.dispose();
  await session.release();
}
