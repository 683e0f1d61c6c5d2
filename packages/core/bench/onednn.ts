/**
 * `nx run core:bench-conv`: TensorFlow's oneDNN CPU kernels on vs off, measured side by side.
 * The parent spawns this script twice (TF_ENABLE_ONEDNN_OPTS=0 and =1; TF reads it at its first
 * op, so one process per setting) and prints ms per op and the off/on speed-up for the conv shapes
 * of ResNet-18 and MobileNetV2 at 224 px (forward, input gradient, filter gradient), and for the
 * training-mode batch norm (`FusedBatchNormV3` forward, `FusedBatchNormGradV3`) and ReLU6 that
 * follow them. A last column compares, in the oneDNN-on process, TF's filter-gradient op with
 * 'SAME' padding (oneDNN) against the same op with EXPLICIT padding (which TF leaves to its Eigen
 * kernel): the measurement behind `fast-kernels.ts`' choice of kernel per conv.
 *
 *   npx nx run core:bench-conv -- [--batch 32] [--repeats 3]
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { conv2dFilterGradientExplicit, fusedBatchNormTraining, initBackend } from '../src/index.js';

interface Case {
  name: string;
  hw: number;
  cin: number;
  cout: number;
  k: number;
  stride: number;
  depthwise?: boolean;
}

const CASES: Case[] = [
  { name: 'resnet18 stem 7x7/2', hw: 224, cin: 3, cout: 64, k: 7, stride: 2 },
  { name: 'resnet18 layer1 3x3', hw: 56, cin: 64, cout: 64, k: 3, stride: 1 },
  { name: 'resnet18 layer2 3x3/2', hw: 56, cin: 64, cout: 128, k: 3, stride: 2 },
  { name: 'resnet18 layer2 3x3', hw: 28, cin: 128, cout: 128, k: 3, stride: 1 },
  { name: 'resnet18 layer3 3x3', hw: 14, cin: 256, cout: 256, k: 3, stride: 1 },
  { name: 'resnet18 layer4 3x3', hw: 7, cin: 512, cout: 512, k: 3, stride: 1 },
  { name: 'mbv2 expand 1x1', hw: 56, cin: 24, cout: 144, k: 1, stride: 1 },
  { name: 'mbv2 depthwise 3x3', hw: 56, cin: 144, cout: 144, k: 3, stride: 1, depthwise: true },
];

type Row = { name: string; fwd: number; dx: number; dw: number; dwExplicit?: number };

/** Batch norm (training mode) and ReLU6 on a conv output shape; `dw` is unused (NaN). */
function normRows(batch: number, repeats: number): Row[] {
  return [
    [56, 64],
    [56, 144],
    [14, 256],
  ].flatMap(([hw, c]) => {
    const x = tf.randomNormal([batch, hw!, hw!, c!], 0, 1, 'float32', 3) as tf.Tensor4D;
    const g = tf.ones([c!]) as tf.Tensor1D;
    const b = tf.zeros([c!]) as tf.Tensor1D;
    const bn = (xx: tf.Tensor) => fusedBatchNormTraining(xx as tf.Tensor4D, g, b, 1e-5);
    const rows: Row[] = [
      { name: `batch norm ${hw}x${hw}x${c}`, fwd: msPerCall(() => bn(x), repeats), dx: msPerCall(() => tf.grad((xx: tf.Tensor) => bn(xx).sum())(x), repeats), dw: NaN },
      { name: `relu6 ${hw}x${hw}x${c}`, fwd: msPerCall(() => tf.relu6(x), repeats), dx: msPerCall(() => tf.grad((xx: tf.Tensor) => tf.relu6(xx).sum())(x), repeats), dw: NaN },
    ];
    tf.dispose([x, g, b]);
    return rows;
  });
}

/**
 * The kernels of one conv, each timing one native op: forward, input gradient (the registered
 * `Conv2DBackpropInput` / `DepthwiseConv2dNativeBackpropInput`, as tfjs' gradients call them),
 * filter gradient (TF's `...BackpropFilter` op with 'SAME' padding, called directly so that
 * oneDNN on/off compares TF's own kernels) and, for regular convs, the filter gradient with
 * EXPLICIT padding.
 */
function opFns(c: Case, batch: number) {
  const x = tf.randomNormal([batch, c.hw, c.hw, c.cin], 0, 1, 'float32', 1) as tf.Tensor4D;
  const w = tf.randomNormal(c.depthwise ? [c.k, c.k, c.cin, 1] : [c.k, c.k, c.cin, c.cout], 0, 0.1, 'float32', 2) as tf.Tensor4D;
  const conv = (xx: tf.Tensor4D, ww: tf.Tensor4D) => (c.depthwise ? tf.depthwiseConv2d(xx, ww, c.stride, 'same') : tf.conv2d(xx, ww, c.stride, 'same'));
  const dy = tf.onesLike(conv(x, w));
  const common = { strides: c.stride, pad: 'same', dimRoundingMode: undefined };
  const run = (name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown>) =>
    tf.engine().runKernel(name, inputs as tf.NamedTensorMap, attrs as never) as tf.Tensor;
  return c.depthwise
    ? {
        fwd: () => conv(x, w),
        dx: () => run('DepthwiseConv2dNativeBackpropInput', { dy, filter: w }, { ...common, dilations: 1, inputShape: x.shape }),
        dw: () => run('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...common, dilations: 1, filterShape: w.shape }),
      }
    : {
        fwd: () => conv(x, w),
        dx: () => run('Conv2DBackpropInput', { dy, filter: w }, { ...common, dataFormat: 'NHWC', inputShape: x.shape }),
        dw: () => nativeFilterGradientSame(x, dy, w.shape, c.stride),
        dwExplicit: () => conv2dFilterGradientExplicit(x, dy, w.shape, [c.stride, c.stride], 'same'),
      };
}

/** TF's `Conv2DBackpropFilter` with 'SAME' padding, bypassing the kernel registered by fast-kernels. */
function nativeFilterGradientSame(x: tf.Tensor4D, dy: tf.Tensor, filterShape: number[], stride: number): tf.Tensor {
  const b = tf.backend() as unknown as {
    binding: Record<string, number>;
    executeSingleOutput(name: string, attrs: unknown[], inputs: tf.Tensor[]): tf.Tensor;
  };
  const sizes = tf.tensor1d(filterShape, 'int32');
  const out = b.executeSingleOutput('Conv2DBackpropFilter', [
    { name: 'T', type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT },
    { name: 'strides', type: b.binding.TF_ATTR_INT, value: [1, stride, stride, 1] },
    { name: 'use_cudnn_on_gpu', type: b.binding.TF_ATTR_BOOL, value: true },
    { name: 'padding', type: b.binding.TF_ATTR_STRING, value: 'SAME' },
    { name: 'data_format', type: b.binding.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'dilations', type: b.binding.TF_ATTR_INT, value: [1, 1, 1, 1] },
  ], [x, sizes, dy]);
  sizes.dispose();
  return out;
}

/**
 * Milliseconds per call. The native backend runs each op synchronously, so the call's wall time is
 * the kernel's (no read-back: copying a 100 MB output to JS would dominate the smaller kernels).
 */
function msPerCall(f: () => tf.Tensor, repeats: number): number {
  tf.tidy(() => void f()); // warm-up (kernel selection, allocation)
  const t0 = performance.now();
  for (let i = 0; i < repeats; i++) tf.tidy(() => void f());
  return (performance.now() - t0) / repeats;
}

async function child(batch: number, repeats: number): Promise<void> {
  await initBackend('tensorflow');
  const rows: Row[] = CASES.map((c) => {
    const f = opFns(c, batch);
    const row: Row = { name: c.name, fwd: msPerCall(f.fwd, repeats), dx: msPerCall(f.dx, repeats), dw: msPerCall(f.dw, repeats) };
    if ('dwExplicit' in f) row.dwExplicit = msPerCall(f.dwExplicit, repeats);
    return row;
  });
  rows.push(...normRows(batch, repeats));
  process.stdout.write(JSON.stringify(rows) + '\n');
}

function parent(batch: number, repeats: number): void {
  const self = fileURLToPath(import.meta.url);
  const run = (flag: string): Row[] => {
    const r = spawnSync(process.execPath, [...process.execArgv, self, '--child', '--batch', String(batch), '--repeats', String(repeats)], {
      env: { ...process.env, TF_ENABLE_ONEDNN_OPTS: flag },
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`bench-conv child (TF_ENABLE_ONEDNN_OPTS=${flag}) failed:\n${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Row[];
  };
  console.log(`batch ${batch}, ${repeats} repeats per op; ms per call with oneDNN off / on (speed-up off/on)`);
  const off = run('0');
  const on = run('1');
  const cell = (a: number | null, b: number) => (a === null || Number.isNaN(a) ? '' : `${a.toFixed(1)} / ${b.toFixed(1)} (${(a / b).toFixed(2)}x)`);
  console.log('| op | forward | input gradient (for BN / ReLU6: forward + backward) | filter gradient | filter gradient with oneDNN on: oneDNN (SAME) / Eigen (EXPLICIT) |\n|---|---|---|---|---|');
  let sumOff = 0;
  let sumOn = 0;
  off.forEach((o, i) => {
    const n = on[i]!;
    sumOff += o.fwd + o.dx + (o.dw || 0);
    sumOn += n.fwd + n.dx + (n.dw || 0);
    console.log(`| ${o.name} | ${cell(o.fwd, n.fwd)} | ${cell(o.dx, n.dx)} | ${cell(o.dw, n.dw)} | ${n.dwExplicit === undefined ? '' : cell(n.dw, n.dwExplicit)} |`);
  });
  console.log(`all rows: ${sumOff.toFixed(0)} ms off, ${sumOn.toFixed(0)} ms on: ${(sumOff / sumOn).toFixed(2)}x`);
}

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const batch = opt('batch', 32);
const repeats = opt('repeats', 3);
if (argv.includes('--child')) await child(batch, repeats);
else parent(batch, repeats);
