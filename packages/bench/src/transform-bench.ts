/**
 * `nx run bench:transforms`: RefConv's transforms of one training step on each route, side by
 * side in one process: the forward (W_t - W_b = Transform(W_b)) and the transform's gradient of
 * every RefConv layer of a model, summed, median of `--rounds` alternating rounds.
 *
 * - per-kernel transforms (regular convs, ResNet-18): tfjs' depthwise conv over the basis image
 *   and TF's depthwise filter gradient, against RefConv's own kernels (`RefconvRefocusPerKernel`);
 * - dense transforms (depthwise convs, MobileNetV2): a conv over the K x K basis image and TF's
 *   conv filter gradient at batch 1, against the MatMul of the basis' patch columns
 *   (`basisColumns`) and its A-transposed MatMul, the route `refocusKernel` takes;
 * - and the optimizer's momentum update of the transforms' weights (`RefconvSgdUpdate`: reads
 *   parameter, momentum and gradient, writes parameter and momentum) next to one elementwise pass
 *   over the same tensors (`x + 0`: one read, one write), the memory-bandwidth yardstick.
 *
 *   npx nx run bench:transforms -- [--archs resnet18,mobilenet_v2] [--rounds 7]
 */
import * as tf from '@tensorflow/tfjs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { createModel } from '@refconv/backbones';
import {
  RefConv2D, basisColumns, cpuDescription, initBackend, kernelChannels, loadRefconvOps, refconvRefocusPerKernel, refconvRefocusPerKernelGrad, refconvSgdUpdate,
  refocus, transformGroups,
} from '@refconv/core';
import { median } from './measure.js';

const argv = yargs(hideBin(process.argv))
  .scriptName('bench:transforms')
  .option('archs', { type: 'string', default: 'resnet18,mobilenet_v2' })
  .option('rounds', { type: 'number', default: 7 })
  .strict()
  .parseSync();

interface Job { image: tf.Tensor4D; transform: tf.Tensor4D; dy: tf.Tensor4D; columns: tf.Tensor2D | null }
type Route = { name: string; forward: (j: Job) => tf.Tensor; gradient: (j: Job) => tf.Tensor };

const conv = (kernel: 'DepthwiseConv2dNativeBackpropFilter' | 'Conv2DBackpropFilter', j: Job) =>
  tf.engine().runKernel(kernel, { x: j.image, dy: j.dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1, filterShape: j.transform.shape } as never) as tf.Tensor;

const ROUTES: Record<'perKernel' | 'dense', Route[]> = {
  perKernel: [
    { name: "TF's depthwise conv", forward: (j) => tf.depthwiseConv2d(j.image, j.transform, 1, 'same'), gradient: (j) => conv('DepthwiseConv2dNativeBackpropFilter', j) },
    { name: "RefConv's kernels", forward: (j) => refconvRefocusPerKernel(j.image, j.transform), gradient: (j) => refconvRefocusPerKernelGrad(j.image, j.dy, j.transform.shape[0]) },
  ],
  dense: [
    { name: 'conv over the basis image', forward: (j) => tf.conv2d(j.image, j.transform, 1, 'same'), gradient: (j) => conv('Conv2DBackpropFilter', j) },
    {
      name: 'MatMul of the patch columns',
      forward: (j) => tf.matMul(j.columns!, tf.reshape(j.transform, [-1, j.transform.shape[3]])),
      gradient: (j) => tf.matMul(j.columns!, tf.reshape(j.dy, [-1, j.dy.shape[3]]), true, false),
    },
  ],
};

function jobsOf(arch: string): { kind: 'perKernel' | 'dense'; jobs: Job[] }[] {
  const model = refocus(createModel(arch, { inputSize: 224, numClasses: 1000 }), { seed: 1 });
  const groups = { perKernel: [] as Job[], dense: [] as Job[] };
  for (const layer of model.layers) {
    if (!(layer instanceof RefConv2D)) continue;
    const basis = layer.getBasis();
    const [k, , inChannels, outPerGroup] = basis.shape;
    const geometry = { kernelSize: k, inChannels, outPerGroup, depthwise: layer.depthwise };
    const n = kernelChannels(geometry);
    const g = transformGroups(layer.grouping, geometry);
    if (g !== 1 && g !== n) continue; // grouped transforms (1 < G < N) are not timed here
    const image = tf.randomNormal([1, k, k, n]) as tf.Tensor4D;
    const job = { image, transform: tf.clone(layer.getTransform()), dy: tf.randomNormal([1, k, k, n]) as tf.Tensor4D, columns: null as tf.Tensor2D | null };
    if (g === n) groups.perKernel.push(job);
    else groups.dense.push({ ...job, columns: basisColumns(tf.reshape(image, basis.shape) as tf.Tensor4D, layer.mapK) });
  }
  model.dispose();
  return (['perKernel', 'dense'] as const).filter((kind) => groups[kind].length > 0).map((kind) => ({ kind, jobs: groups[kind] }));
}

const disposeJobs = (jobs: Job[]) => tf.dispose(jobs.flatMap((j) => [j.image, j.transform, j.dy, ...(j.columns ? [j.columns] : [])]));

await initBackend();
if (!loadRefconvOps().ok) throw new Error(`bench:transforms needs RefConv's own kernels: ${JSON.stringify(loadRefconvOps())}`);
console.log(`${cpuDescription()}; one training step's transforms, summed over the model's RefConv layers; median of ${argv.rounds} alternating rounds`);
console.log('| arch, transforms | route | forward ms (update: ms) | transform gradient ms (update: bandwidth) |\n|---|---|---:|---:|');
for (const arch of argv.archs.split(',')) {
  for (const { kind, jobs } of jobsOf(arch)) {
    const weights = jobs.reduce((s, j) => s + j.transform.size, 0);
    const label = kind === 'dense' ? 'dense' : 'per-kernel';
    if (weights < 1e5) {
      // e.g. MobileNetV2's stem (96 kernels): too small to time meaningfully
      console.log(`| ${arch}, ${jobs.length} ${label} (${weights} weights) | not timed (under 100 k weights) | | |`);
      disposeJobs(jobs);
      continue;
    }
    const routes = ROUTES[kind];
    const times = routes.map(() => ({ forward: [] as number[], gradient: [] as number[] }));
    for (let round = -1; round < argv.rounds; round++) {
      routes.forEach((route, r) => {
        for (const phase of ['forward', 'gradient'] as const) {
          // tfjs-node runs kernels synchronously: the outputs are complete when the calls return
          const t0 = performance.now();
          const outs = jobs.map((j) => route[phase](j));
          const ms = performance.now() - t0;
          tf.dispose(outs);
          if (round >= 0) times[r]![phase].push(ms);
        }
      });
    }
    routes.forEach((route, r) => {
      console.log(`| ${arch}, ${jobs.length} ${label} (${(weights / 1e6).toFixed(1)} M weights) | ${route.name} | ${median(times[r]!.forward).toFixed(1)} | ${median(times[r]!.gradient).toFixed(1)} |`);
    });
    // The momentum update of these weights, on fresh outputs as in training, against a copy pass.
    const state = jobs.map((j) => ({ p: j.transform, buf: tf.zerosLike(j.transform), g: tf.randomNormal(j.transform.shape, 0, 1e-3) }));
    const upd: number[] = [];
    const copy: number[] = [];
    for (let round = -1; round < argv.rounds; round++) {
      let t0 = performance.now();
      const outs = state.flatMap((x) => refconvSgdUpdate(x.p, x.buf, x.g, 0.01, { momentum: 0.9 }));
      const u = performance.now() - t0;
      tf.dispose(outs);
      t0 = performance.now();
      const copies = state.map((x) => tf.add(x.p, 0));
      const c = performance.now() - t0;
      tf.dispose(copies);
      if (round >= 0) {
        upd.push(u);
        copy.push(c);
      }
    }
    const [u, c] = [median(upd), median(copy)];
    console.log(`| ${arch}, momentum update of the ${label} transforms | RefConv's SGD kernel; one elementwise pass | ${u.toFixed(1)}; ${c.toFixed(1)} (${(u / c).toFixed(1)}x) | ${((5 * 4 * weights) / (u * 1e6)).toFixed(1)} GB/s |`);
    tf.dispose(state.flatMap((x) => [x.buf, x.g]));
    disposeJobs(jobs);
  }
}
