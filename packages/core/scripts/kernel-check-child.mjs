#!/usr/bin/env node
/**
 * One side of the kernel self-check (see src/kernel-check.ts): runs TensorFlow's native kernels
 * that this project relies on, on fixed pseudo-random inputs, and writes every output to a file.
 *
 * It runs in a child process of its own because TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, at
 * its first op, and because a faulty kernel may kill the process (SIGFPE inside oneDNN has been
 * seen): the parent reads `progress.log` to learn which case was running when the process died,
 * and that crash becomes a verdict instead of the end of the user's run.
 *
 * Plain JavaScript on purpose: it must run the same way from the source tree, from `dist/` and
 * from an installed package, without a TypeScript loader.
 *
 * Usage: node kernel-check-child.mjs CONFIG.json     (CONFIG: see `readConfig`)
 *        node kernel-check-child.mjs --list          (prints the cases as JSON)
 *
 * Roles:
 *   reference  the trusted path (the parent starts it with oneDNN off): every case on the plain
 *              native kernel, and the small cases also against a float64 loop in JavaScript
 *   candidate  the kernels the backend would use (oneDNN on): every case on the native kernel and
 *              on each alternative route that the runtime can switch a kernel class to, each
 *              compared with the reference side's output file (relative L1 error per case)
 *
 * Besides TF's kernels, the candidate checks and times RefConv's own kernels (`refconv` route:
 * native/refconv_ops.cc, the SGD update and the max-pool gradient) against TF's ops for the same
 * work, when they are built.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Bump when the cases, routes or tolerances change: cached verdicts of older versions are ignored. */
export const CHECK_VERSION = 4;

// ---------------------------------------------------------------------------------------------
// Cases: the shapes of the backbones in @refconv/backbones at 224 px (ResNet-18/50/101 at full
// width, MobileNet v2/v3, ShuffleNetV2), their necks and heads (FPN, ASPP, DeepLabV3+ decoder,
// RetinaNet head), the RefConv transforms, and the input-channel counts where oneDNN's 1x1
// input gradient was seen wrong (40, 72, 80, 112, 176, 320, 512).
// ---------------------------------------------------------------------------------------------

/** 1x1 convs: [map size, in channels, out channels, stride]. */
const POINTWISE = [
  // ResNet-50/101 bottlenecks, downsample paths (stride 2) and the SIGFPE shapes (7x7x512->2048, 14x14x256->1024)
  [56, 64, 64, 1], [56, 64, 256, 1], [56, 256, 64, 1], [56, 256, 128, 1], [28, 128, 512, 1], [28, 512, 128, 1],
  [28, 512, 256, 1], [14, 256, 1024, 1], [14, 1024, 256, 1], [14, 1024, 512, 1], [7, 512, 2048, 1], [7, 2048, 512, 1],
  [56, 256, 512, 2], [28, 512, 1024, 2], [14, 1024, 2048, 2],
  // MobileNetV2 expand / project convs
  [112, 32, 16, 1], [112, 16, 96, 1], [56, 96, 24, 1], [56, 24, 144, 1], [56, 144, 24, 1], [28, 144, 32, 1],
  [28, 32, 192, 1], [28, 192, 32, 1], [14, 192, 64, 1], [14, 64, 384, 1], [14, 384, 64, 1], [14, 384, 96, 1],
  [14, 96, 576, 1], [14, 576, 96, 1], [7, 576, 160, 1], [7, 160, 960, 1], [7, 960, 160, 1], [7, 960, 320, 1],
  [7, 320, 1280, 1],
  // MobileNetV3 (channel counts 40, 72, 80, 112, 176 ...) and its squeeze-excitation convs on 1x1 maps
  [28, 72, 40, 1], [28, 40, 120, 1], [28, 120, 40, 1], [14, 40, 240, 1], [14, 240, 80, 1], [14, 80, 200, 1],
  [14, 80, 184, 1], [14, 184, 80, 1], [14, 80, 480, 1], [14, 480, 112, 1], [14, 112, 672, 1], [14, 176, 64, 1],
  [7, 672, 160, 1], [1, 72, 24, 1], [1, 24, 72, 1], [1, 480, 120, 1], [1, 960, 240, 1], [1, 240, 960, 1],
  // ShuffleNetV2 branches
  [56, 24, 58, 1], [28, 116, 116, 1], [14, 232, 232, 1], [7, 464, 464, 1], [7, 464, 1024, 1],
  // FPN laterals, ASPP, DeepLabV3+ low-level projection
  [28, 512, 256, 1], [14, 1024, 256, 1], [7, 2048, 256, 1], [14, 2048, 256, 1], [14, 1280, 256, 1], [56, 256, 48, 1],
];

/** Spatial convs: [kernel, map size, in channels, out channels, stride, padding]. */
const SPATIAL = [
  [7, 224, 3, 64, 2, 'same'], [3, 224, 3, 32, 2, 'same'], [3, 112, 3, 16, 2, 'same'],
  [3, 56, 64, 64, 1, 'same'], [3, 56, 64, 128, 2, 'same'], [3, 28, 128, 128, 1, 'same'], [3, 28, 128, 256, 2, 'same'],
  [3, 14, 256, 256, 1, 'same'], [3, 14, 256, 512, 2, 'same'], [3, 7, 512, 512, 1, 'same'],
  [3, 56, 128, 128, 2, 'same'], [3, 28, 256, 256, 2, 'same'], [3, 14, 512, 512, 2, 'same'],
  [3, 28, 256, 256, 1, 'same'], [3, 28, 304, 256, 1, 'same'], [3, 16, 256, 256, 1, 'valid'], [3, 10, 2048, 256, 1, 'valid'],
  [5, 14, 64, 64, 1, 'same'], [3, 8, 256, 36, 1, 'same'],
  // RefConv's dense transform over a depthwise basis: the kernel viewed as a 3x3 image of C channels
  [3, 3, 960, 960, 1, 'same'], [3, 3, 576, 576, 1, 'same'],
];

/** Depthwise convs: [kernel, map size, channels, stride]. */
const DEPTHWISE = [
  [3, 112, 32, 1], [3, 112, 96, 2], [3, 56, 144, 1], [3, 56, 144, 2], [3, 28, 192, 1], [3, 28, 192, 2],
  [3, 14, 384, 1], [3, 14, 576, 1], [3, 14, 576, 2], [3, 7, 960, 1], [5, 28, 72, 2], [5, 14, 120, 1],
  [5, 14, 672, 2], [5, 7, 960, 1], [3, 28, 116, 1], [3, 14, 232, 2], [3, 7, 464, 1], [3, 56, 24, 2],
  // RefConv's per-kernel transform: one 3x3 map per 2-D kernel of a 64x64 and a 256x256 3x3 conv
  [3, 3, 4096, 1], [3, 3, 65536, 1],
];

/**
 * RefConv's per-kernel transform on RefConv's own kernels (`refconv` route) against TF's depthwise
 * conv (`native`): [kernel K, map M, kernels N] (3x3 convs of 64x64 and 256x256 channels, ResNet's
 * 7x7 stem, a 1x1 map, a 5x5 map over a 5x5 kernel).
 */
const REFOCUS = [[3, 3, 4096], [3, 3, 65536], [7, 3, 192], [3, 1, 4096], [5, 5, 1000]];

/** Batch norm: [map size, channels]. */
const BATCH_NORM = [[56, 64], [28, 96], [14, 256], [14, 1024], [7, 2048], [7, 960]];

/** Dense layers: [rows, in, out]. */
const MATMUL = [[4, 512, 1000], [4, 1280, 1000], [4, 2048, 1000], [64, 256, 10]];

/**
 * RefConv's dense transforms as MatMuls (refconv-op.ts, refocusKernel): [C, rows] = forward
 * (the basis' 9 x 9C patch columns times the 9C x C transform) and its transform gradient (the
 * columns transposed times the 9 x C output gradient), at MobileNetV2's widest depthwise layers.
 */
const REFCONV_MATMUL = [960, 576];

/** Max-pool gradients: [map size, channels, window, stride, padding] (ResNet's and ShuffleNetV2's stems; odd sizes, SAME). */
const MAX_POOL = [[114, 64, 3, 2, 'valid'], [57, 24, 3, 2, 'valid'], [15, 8, 3, 2, 'same'], [10, 7, 3, 1, 'valid'], [8, 3, 2, 2, 'valid']];

/** SGD updates: [size, momentum, dampening, weight decay, nesterov] (the optimizer's options). */
const SGD = [[300007, 0.9, 0, 0, false], [65536, 0.9, 0, 1e-4, true], [4099, 0.9, 0.1, 5e-4, false]];

/**
 * The speed set: kernels of a ResNet-18 and a MobileNetV2 training step at 224 px, batch 8
 * (forward, input and filter gradient of the stem, 3x3, 1x1 and depthwise convs; training batch
 * norm), timed in both children (oneDNN off and on) to decide whether oneDNN is worth turning on
 * on this host. [kind, kernel, map size, in, out, stride].
 */
const SPEED_SET = [
  ['conv', 7, 224, 3, 64, 2], ['conv', 3, 56, 64, 64, 1], ['conv', 3, 56, 64, 128, 2], ['conv', 3, 28, 128, 128, 1],
  ['conv', 3, 14, 256, 256, 1], ['conv', 3, 7, 512, 512, 1], ['conv', 1, 56, 24, 144, 1], ['conv', 1, 56, 144, 24, 1],
  ['conv', 1, 14, 384, 64, 1], ['conv', 1, 7, 960, 160, 1], ['depthwise', 3, 112, 32, 32, 1], ['depthwise', 3, 56, 144, 144, 2],
  ['depthwise', 3, 14, 384, 384, 1], ['batchNorm', 0, 56, 144, 144, 1], ['batchNorm', 0, 14, 384, 384, 1],
];

/** The speed set as cases (batch 8). */
function speedCases() {
  const out = [];
  for (const [kind, k, h, cin, cout, stride] of SPEED_SET) {
    const id = `${kind} k${k} ${h}x${h}x${cin}->${cout} s${stride}`;
    if (kind === 'batchNorm') {
      for (const op of ['training', 'trainingGrad']) out.push({ kind, h, cin, n: 8, op, id: `${id} ${op}`, cls: 'batchNorm.training' });
      continue;
    }
    const family = kind === 'depthwise' ? 'depthwise' : k === 1 ? 'conv1x1' : 'conv';
    for (const op of ['forward', 'inputGrad', 'filterGrad']) out.push({ kind, k, h, cin, cout, stride, pad: 'same', n: 8, op, id: `${id} ${op}`, cls: `${family}.${op}` });
  }
  return out;
}

/** Batch size: 2 where it keeps a case small, 1 on the largest maps. */
const batchFor = (h) => (h >= 56 ? 1 : 2);

/**
 * Every case: `cls` is the kernel class that the runtime routes as a whole, `routes` the ways the
 * candidate computes it (`native` first: TF's own op as tfjs calls it).
 */
export function listCases() {
  const cases = [];
  const push = cases.push.bind(cases);
  const seen = new Set();
  // A shape used by two models (ResNet's 28x28x512->256 is also an FPN lateral) is one case.
  cases.push = (...items) => push(...items.filter((c) => !seen.has(c.id) && seen.add(c.id)));
  for (const [h, cin, cout, s] of POINTWISE) {
    const base = { kind: 'conv', k: 1, h, cin, cout, stride: s, pad: 'same', n: batchFor(h) };
    const id = `1x1 ${h}x${h}x${cin}->${cout}${s > 1 ? ` s${s}` : ''}`;
    cases.push({ ...base, id: `${id} forward`, cls: 'conv1x1.forward', op: 'forward', routes: ['native', 'matmul'] });
    cases.push({ ...base, id: `${id} input-grad`, cls: 'conv1x1.inputGrad', op: 'inputGrad', routes: ['native', 'explicit', 'matmul'] });
    cases.push({ ...base, id: `${id} filter-grad`, cls: 'conv1x1.filterGrad', op: 'filterGrad', routes: ['native', 'explicit', 'matmul'] });
  }
  for (const [k, h, cin, cout, s, pad] of SPATIAL) {
    const base = { kind: 'conv', k, h, cin, cout, stride: s, pad, n: batchFor(h) };
    const id = `${k}x${k} ${h}x${h}x${cin}->${cout}${s > 1 ? ` s${s}` : ''}${pad === 'valid' ? ' valid' : ''}`;
    cases.push({ ...base, id: `${id} forward`, cls: 'conv.forward', op: 'forward', routes: ['native'] });
    cases.push({ ...base, id: `${id} input-grad`, cls: 'conv.inputGrad', op: 'inputGrad', routes: ['native', 'explicit'] });
    cases.push({ ...base, id: `${id} filter-grad`, cls: 'conv.filterGrad', op: 'filterGrad', routes: ['native', 'explicit'] });
  }
  for (const [k, h, c, s] of DEPTHWISE) {
    const base = { kind: 'depthwise', k, h, cin: c, cout: c, stride: s, pad: 'same', n: h === 3 ? 1 : batchFor(h) };
    const id = `depthwise ${k}x${k} ${h}x${h}x${c}${s > 1 ? ` s${s}` : ''}`;
    cases.push({ ...base, id: `${id} forward`, cls: 'depthwise.forward', op: 'forward', routes: ['native'] });
    cases.push({ ...base, id: `${id} input-grad`, cls: 'depthwise.inputGrad', op: 'inputGrad', routes: ['native'] });
    cases.push({ ...base, id: `${id} filter-grad`, cls: 'depthwise.filterGrad', op: 'filterGrad', routes: ['native'] });
  }
  for (const [k, m, n] of REFOCUS) {
    // a depthwise conv (stride 1, SAME) of the M x M transform over the K x K basis image of N channels
    const base = { kind: 'depthwise', h: k, cin: n, cout: n, k: m, stride: 1, pad: 'same', n: 1, cls: 'refocus.perKernel', routes: ['native', 'refconv'] };
    cases.push({ ...base, id: `per-kernel refocus ${k}x${k}x${n} map ${m} forward`, op: 'forward' });
    cases.push({ ...base, id: `per-kernel refocus ${k}x${k}x${n} map ${m} transform grad`, op: 'filterGrad' });
  }
  for (const [h, c] of BATCH_NORM) {
    const base = { kind: 'batchNorm', h, cin: c, n: 2 };
    cases.push({ ...base, id: `batch norm ${h}x${h}x${c} training`, cls: 'batchNorm.training', op: 'training', routes: ['native', 'refconv'] });
    cases.push({ ...base, id: `batch norm ${h}x${h}x${c} training grad`, cls: 'batchNorm.training', op: 'trainingGrad', routes: ['native', 'refconv'] });
    cases.push({ ...base, id: `batch norm ${h}x${h}x${c} inference`, cls: 'batchNorm.inference', op: 'inference', routes: ['native', 'affine'] });
  }
  for (const [m, k, n] of MATMUL) {
    cases.push({ kind: 'matmul', m, cin: k, cout: n, id: `matmul ${m}x${k}x${n}`, cls: 'matmul', op: 'forward', routes: ['native'] });
  }
  for (const c of REFCONV_MATMUL) {
    cases.push({ kind: 'matmul', m: 9, cin: 9 * c, cout: c, id: `RefConv dense transform C=${c} forward matmul`, cls: 'matmul', op: 'forward', routes: ['native'] });
    cases.push({ kind: 'matmul', m: 9 * c, cin: 9, cout: c, transposeA: true, id: `RefConv dense transform C=${c} gradient matmul (A transposed)`, cls: 'matmul', op: 'forward', routes: ['native'] });
  }
  for (const [h, c, k, stride, pad] of MAX_POOL) {
    cases.push({ kind: 'maxPool', h, cin: c, k, stride, pad, n: 2, id: `max-pool grad ${k}x${k} s${stride} ${h}x${h}x${c} ${pad}`, cls: 'maxPool.inputGrad', op: 'inputGrad', routes: ['native', 'refconv'] });
  }
  for (const [size, momentum, dampening, weightDecay, nesterov] of SGD) {
    const id = `sgd update ${size} m${momentum} d${dampening} wd${weightDecay}${nesterov ? ' nesterov' : ''}`;
    cases.push({ kind: 'sgd', size, momentum, dampening, weightDecay, nesterov, id, cls: 'sgd.update', op: 'update', routes: ['native', 'refconv'] });
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------
// Inputs: a fixed pseudo-random stream (xorshift32) so that both children see the same numbers.
// ---------------------------------------------------------------------------------------------

function hashString(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0 || 1;
}

/** Uniform values in [-1, 1) from a seed string. */
function randomArray(size, seed) {
  const out = new Float32Array(size);
  let s = hashString(seed);
  for (let i = 0; i < size; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    out[i] = s / 2147483648 - 1;
  }
  return out;
}

/** Output size and [before, after] padding of a conv along one axis (TF 'SAME' / 'VALID'). */
function convGeometry(len, k, stride, pad) {
  if (pad === 'valid') return { out: Math.ceil((len - k + 1) / stride), before: 0, after: 0 };
  const out = Math.ceil(len / stride);
  const total = Math.max((out - 1) * stride + k - len, 0);
  return { out, before: Math.floor(total / 2), after: total - Math.floor(total / 2) };
}

// ---------------------------------------------------------------------------------------------
// The kernels, called the way tfjs-node calls them (same op names and attributes).
// ---------------------------------------------------------------------------------------------

function makeOps(tf, refconvOps) {
  const b = tf.backend();
  const B = b.binding;
  const T = { name: 'T', type: B.TF_ATTR_TYPE, value: B.TF_FLOAT };
  const ints = (name, value) => ({ name, type: B.TF_ATTR_INT, value });
  const str = (name, value) => ({ name, type: B.TF_ATTR_STRING, value });
  const bool = (name, value) => ({ name, type: B.TF_ATTR_BOOL, value });
  const float = (name, value) => ({ name, type: B.TF_ATTR_FLOAT, value });

  /** Conv attributes; `explicit` = [top, bottom, left, right] selects TF's EXPLICIT padding. */
  function convAttrs(c, explicit, depthwise) {
    const attrs = [T, ints('strides', [1, c.stride, c.stride, 1])];
    if (!depthwise) attrs.push(bool('use_cudnn_on_gpu', true));
    attrs.push(str('padding', explicit ? 'EXPLICIT' : c.pad.toUpperCase()));
    attrs.push(ints('explicit_paddings', explicit ? [0, 0, explicit[0], explicit[1], explicit[2], explicit[3], 0, 0] : []));
    attrs.push(str('data_format', 'NHWC'), ints('dilations', [1, 1, 1, 1]));
    return attrs;
  }

  function explicitPadding(c) {
    const g = convGeometry(c.h, c.k, c.stride, c.pad);
    return [g.before, g.after, g.before, g.after];
  }

  /** 1x1 conv via MatMul: the input sampled at the stride, times the [Cin, Cout] kernel. */
  function sampled(x, c) {
    if (c.stride === 1) return x;
    const [n, h, w, ch] = x.shape;
    return tf.stridedSlice(x, [0, 0, 0, 0], [n, h, w, ch], [1, c.stride, c.stride, 1]);
  }

  function pointwiseMatmul(c, op, x, w, dy) {
    const xs = sampled(x, c);
    const [n, ho, wo] = xs.shape;
    const w2 = tf.reshape(w, [c.cin, c.cout]);
    if (op === 'forward') return tf.reshape(tf.matMul(tf.reshape(xs, [-1, c.cin]), w2), [n, ho, wo, c.cout]);
    if (op === 'filterGrad') return tf.reshape(tf.matMul(tf.reshape(xs, [-1, c.cin]), tf.reshape(dy, [-1, c.cout]), true, false), [1, 1, c.cin, c.cout]);
    const g = tf.reshape(tf.matMul(tf.reshape(dy, [-1, c.cout]), w2, false, true), [n, ho, wo, c.cin]);
    if (c.stride === 1) return g;
    const s = c.stride;
    const spread = tf.pad(tf.reshape(g, [n, ho, 1, wo, 1, c.cin]), [[0, 0], [0, 0], [0, s - 1], [0, 0], [0, s - 1], [0, 0]]);
    return tf.slice(tf.reshape(spread, [n, ho * s, wo * s, c.cin]), [0, 0, 0, 0], [n, c.h, c.h, c.cin]);
  }

  /** Inputs of a case: x, the filter and the output gradient dy. */
  function inputsOf(c) {
    if (c.kind === 'sgd') {
      const vec = (tag) => tf.tensor1d(randomArray(c.size, `${c.id} ${tag}`));
      return { p: vec('p'), buf: vec('buf'), g: vec('g') };
    }
    if (c.kind === 'maxPool') {
      // values on a coarse grid, so that windows hold ties (the tie rule is part of the kernel)
      const x = tf.tensor4d(randomArray(c.n * c.h * c.h * c.cin, `${c.id} x`).map((v) => Math.round(v * 3)), [c.n, c.h, c.h, c.cin]);
      const out = c.pad === 'same' ? Math.ceil(c.h / c.stride) : Math.floor((c.h - c.k) / c.stride) + 1;
      return { x, dy: tf.tensor4d(randomArray(c.n * out * out * c.cin, `${c.id} dy`), [c.n, out, out, c.cin]) };
    }
    if (c.kind === 'matmul') {
      // transposeA: `a` is stored [cin, m] and the product is a^T w, as tfjs' MatMul gradient calls it
      return { a: tf.tensor2d(randomArray(c.m * c.cin, `${c.id} a`), c.transposeA ? [c.cin, c.m] : [c.m, c.cin]), w: tf.tensor2d(randomArray(c.cin * c.cout, `${c.id} w`), [c.cin, c.cout]) };
    }
    if (c.kind === 'batchNorm') {
      const x = tf.tensor4d(randomArray(c.n * c.h * c.h * c.cin, `${c.id} x`).map((v) => 2 * v + 0.5), [c.n, c.h, c.h, c.cin]);
      const vec = (tag, f) => tf.tensor1d(randomArray(c.cin, `${c.id} ${tag}`).map(f));
      return {
        x, dy: tf.tensor4d(randomArray(x.size, `${c.id} dy`), x.shape),
        scale: vec('scale', (v) => 1 + 0.5 * v), offset: vec('offset', (v) => v), mean: vec('mean', (v) => 0.5 + 0.2 * v), variance: vec('var', (v) => 4 + 3 * v),
      };
    }
    const fshape = c.kind === 'depthwise' ? [c.k, c.k, c.cin, 1] : [c.k, c.k, c.cin, c.cout];
    const g = convGeometry(c.h, c.k, c.stride, c.pad);
    const x = tf.tensor4d(randomArray(c.n * c.h * c.h * c.cin, `${c.id} x`), [c.n, c.h, c.h, c.cin]);
    const w = tf.tensor4d(randomArray(fshape.reduce((a, v) => a * v, 1), `${c.id} w`), fshape);
    const dy = tf.tensor4d(randomArray(c.n * g.out * g.out * c.cout, `${c.id} dy`), [c.n, g.out, g.out, c.cout]);
    return { x, w, dy };
  }

  function bnAttrs(training, withAvg) {
    const attrs = [T, { name: 'U', type: B.TF_ATTR_TYPE, value: B.TF_FLOAT }, float('epsilon', 1e-5)];
    if (withAvg) attrs.push(float('exponential_avg_factor', 1));
    attrs.push(str('data_format', 'NHWC'), bool('is_training', training));
    return attrs;
  }

  /** Runs one case on one route (on `given` inputs, or fresh ones disposed after); returns the output tensor. */
  function run(c, route, given) {
    const inp = given ?? inputsOf(c);
    try {
      if (c.kind === 'matmul') return tf.matMul(inp.a, inp.w, c.transposeA ?? false, false);
      if (c.kind === 'sgd') return sgdUpdate(c, route, inp);
      if (c.kind === 'maxPool') return maxPoolGrad(c, route, inp);
      if (c.kind === 'batchNorm') {
        if (c.op === 'inference' && route === 'affine') {
          // inference-mode batch norm as the per-channel scale and shift it is (two elementwise passes)
          const k = tf.mul(inp.scale, tf.rsqrt(tf.add(inp.variance, 1e-5)));
          const shift = tf.sub(inp.offset, tf.mul(inp.mean, k));
          return tf.add(tf.mul(inp.x, k), shift);
        }
        if (c.op === 'inference') {
          return b.executeMultipleOutputs('FusedBatchNorm', [T, float('epsilon', 1e-5), str('data_format', 'NHWC'), bool('is_training', false)],
            [inp.x, inp.scale, inp.offset, inp.mean, inp.variance], 5)[0];
        }
        const outs = batchNormTraining(c, route, inp);
        const y = tf.concat(outs.map((t) => tf.reshape(t, [-1])));
        tf.dispose(outs);
        return y;
      }
      const depthwise = c.kind === 'depthwise';
      if (route === 'refconv' && c.cls === 'refocus.perKernel') {
        return c.op === 'forward'
          ? b.executeSingleOutput('RefconvRefocusPerKernel', [], [inp.x, inp.w])
          : b.executeSingleOutput('RefconvRefocusPerKernelGrad', [ints('map_k', [c.k])], [inp.x, inp.dy]);
      }
      if (route === 'matmul') return pointwiseMatmul(c, c.op, inp.x, inp.w, inp.dy);
      const explicit = route === 'explicit' ? explicitPadding(c) : null;
      const name = depthwise ? 'DepthwiseConv2dNative' : 'Conv2D';
      if (c.op === 'forward') return b.executeSingleOutput(name, convAttrs(c, explicit, depthwise), [inp.x, inp.w]);
      if (c.op === 'inputGrad') {
        const sizes = tf.tensor1d(inp.x.shape, 'int32');
        return b.executeSingleOutput(`${name}BackpropInput`, convAttrs(c, explicit, depthwise), [sizes, inp.w, inp.dy]);
      }
      const sizes = tf.tensor1d(inp.w.shape, 'int32');
      return b.executeSingleOutput(`${name}BackpropFilter`, convAttrs(c, explicit, depthwise), [inp.x, sizes, inp.dy]);
    } finally {
      if (!given) for (const t of Object.values(inp)) t.dispose();
    }
  }
  /**
   * Training-mode batch norm (`training`: y, mean and Bessel-corrected variance; `trainingGrad`:
   * dx, dscale, doffset after the forward): TF's FusedBatchNormV3 / FusedBatchNormGradV3 (`native`)
   * or RefconvBatchNormTraining / RefconvBatchNormTrainingGrad; every intermediate disposed.
   */
  function batchNormTraining(c, route, inp) {
    if (route === 'refconv') {
      const [y, m, v, inv] = b.executeMultipleOutputs('RefconvBatchNormTraining', [float('epsilon', 1e-5)], [inp.x, inp.scale, inp.offset], 4);
      if (c.op === 'training') {
        // RefConv's kernel reports the biased variance, TF's op (the reference) the Bessel-corrected one
        const rows = inp.x.size / c.cin;
        const corrected = tf.mul(v, rows / (rows - 1));
        tf.dispose([v, inv]);
        return [y, m, corrected];
      }
      const grads = b.executeMultipleOutputs('RefconvBatchNormTrainingGrad', [float('epsilon', 1e-5)], [inp.dy, inp.x, inp.scale, inp.offset, m, inv], 3);
      tf.dispose([y, m, v, inv]);
      return grads;
    }
    const empty = tf.tensor1d([]);
    const [y, m, v, r1, r2, r3] = b.executeMultipleOutputs('FusedBatchNormV3', bnAttrs(true, true), [inp.x, inp.scale, inp.offset, empty, empty], 6);
    empty.dispose();
    if (c.op === 'training') {
      tf.dispose([r1, r2, r3]);
      return [y, m, v];
    }
    const [dx, dscale, doffset, e1, e2] = b.executeMultipleOutputs('FusedBatchNormGradV3', bnAttrs(true, false), [inp.dy, inp.x, inp.scale, r1, r2, r3], 5);
    tf.dispose([y, m, v, r1, r2, r3, e1, e2]);
    return [dx, dscale, doffset];
  }

  /** torch.optim.SGD's step with a momentum buffer: tfjs ops as @refconv/engine's SGD runs them (`native`) or RefconvSgdUpdate. */
  function sgdUpdate(c, route, { p, buf, g }, separate = false) {
    const lr = 0.0137;
    let outs;
    if (route === 'refconv') {
      const attrs = [float('momentum', c.momentum), float('dampening', c.dampening), float('weight_decay', c.weightDecay), bool('nesterov', c.nesterov)];
      const lrT = tf.scalar(lr);
      outs = b.executeMultipleOutputs('RefconvSgdUpdate', attrs, [p, buf, g, lrT], 2);
      lrT.dispose();
    } else {
      outs = tf.tidy(() => {
        const d = c.weightDecay !== 0 ? tf.add(g, tf.mul(p, c.weightDecay)) : g;
        const next = tf.add(tf.mul(buf, c.momentum), c.dampening === 0 ? d : tf.mul(d, 1 - c.dampening));
        const step = c.nesterov ? tf.add(d, tf.mul(next, c.momentum)) : next;
        return [tf.sub(p, tf.mul(step, lr)), next];
      });
    }
    if (separate) return outs;
    const y = tf.concat(outs);
    tf.dispose(outs);
    return y;
  }

  /** Max-pool input gradient: TF's MaxPoolGrad (`native`) or RefconvMaxPoolGrad. */
  function maxPoolGrad(c, route, { x, dy }) {
    const before = c.pad === 'same' ? convGeometry(c.h, c.k, c.stride, 'same').before : 0;
    if (route === 'refconv') return b.executeSingleOutput('RefconvMaxPoolGrad', [ints('ksize', [c.k, c.k]), ints('strides', [c.stride, c.stride]), ints('pads', [before, before])], [x, dy]);
    const attrs = [T, ints('ksize', [1, c.k, c.k, 1]), ints('strides', [1, c.stride, c.stride, 1]), str('padding', c.pad.toUpperCase()), str('data_format', 'NHWC')];
    const y = b.executeSingleOutput('MaxPool', attrs, [x]);
    return b.executeSingleOutput('MaxPoolGrad', attrs, [x, y, dy]);
  }
  /** The optimizer update, max-pool gradient or training batch norm alone (no concatenation), for timing. */
  function runSeparate(c, route, inp) {
    if (c.kind === 'sgd') return sgdUpdate(c, route, inp, true);
    if (c.kind === 'batchNorm' && c.op !== 'inference') return batchNormTraining(c, route, inp);
    return [c.kind === 'maxPool' ? maxPoolGrad(c, route, inp) : run(c, route, inp)];
  }
  return { run, inputsOf, refconvOps, runSeparate };
}

/** Loads RefConv's own kernels (native/build/refconv_ops.node) into this process's TensorFlow; false where they are not built or do not load. */
function loadRefconvOps(require) {
  const file = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'native', 'build', 'refconv_ops.node');
  if (!fs.existsSync(file)) return false;
  try {
    require(file).register();
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// float64 loops: the reference side checks its own kernels on the smaller cases.
// ---------------------------------------------------------------------------------------------

/** Multiply-accumulates of a case, to pick the ones a JavaScript loop can afford. */
function macs(c) {
  if (c.kind === 'conv') return c.n * c.h * c.h * c.k * c.k * c.cin * c.cout / (c.stride * c.stride);
  if (c.kind === 'depthwise') return c.n * c.h * c.h * c.k * c.k * c.cin / (c.stride * c.stride);
  if (c.kind === 'matmul') return c.m * c.cin * c.cout;
  return c.n * c.h * c.h * c.cin;
}

/** float64 result of a conv / depthwise / matmul case from the same inputs. */
function naive(c, inp) {
  if (c.kind === 'matmul') {
    const a = inp.a.dataSync(), w = inp.w.dataSync();
    const out = new Float64Array(c.m * c.cout);
    for (let i = 0; i < c.m; i++) for (let k = 0; k < c.cin; k++) { const av = c.transposeA ? a[k * c.m + i] : a[i * c.cin + k]; for (let j = 0; j < c.cout; j++) out[i * c.cout + j] += av * w[k * c.cout + j]; }
    return out;
  }
  if (c.kind === 'batchNorm') return null;
  const depthwise = c.kind === 'depthwise';
  const x = inp.x.dataSync(), w = inp.w.dataSync(), dy = inp.dy.dataSync();
  const g = convGeometry(c.h, c.k, c.stride, c.pad);
  const { n, h, k, cin, cout } = c;
  const ho = g.out;
  const out = new Float64Array(c.op === 'forward' ? n * ho * ho * cout : c.op === 'inputGrad' ? x.length : w.length);
  for (let b = 0; b < n; b++) for (let oy = 0; oy < ho; oy++) for (let ox = 0; ox < ho; ox++) for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) {
    const iy = oy * c.stride + ky - g.before, ix = ox * c.stride + kx - g.before;
    if (iy < 0 || ix < 0 || iy >= h || ix >= h) continue;
    const xBase = ((b * h + iy) * h + ix) * cin, yBase = ((b * ho + oy) * ho + ox) * cout;
    for (let i = 0; i < cin; i++) {
      const jFrom = depthwise ? i : 0, jTo = depthwise ? i + 1 : cout;
      for (let j = jFrom; j < jTo; j++) {
        const wIdx = depthwise ? (ky * k + kx) * cin + i : ((ky * k + kx) * cin + i) * cout + j;
        if (c.op === 'forward') out[yBase + j] += x[xBase + i] * w[wIdx];
        else if (c.op === 'inputGrad') out[xBase + i] += dy[yBase + j] * w[wIdx];
        else out[wIdx] += x[xBase + i] * dy[yBase + j];
      }
    }
  }
  return out;
}

/** sum |a - b| / sum |b| (and Infinity for a non-finite value in a). */
function relativeL1(a, b) {
  let err = 0, norm = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) return Infinity;
    err += Math.abs(a[i] - b[i]);
    norm += Math.abs(b[i]);
  }
  return norm > 0 ? err / norm : err;
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

/**
 * CONFIG.json: { package, role: 'reference'|'candidate', outDir, skip?: string[], avoid?: string[], fault?: string, speed?: boolean }.
 * `speed: false` leaves out the speed set (the self-check's own tests, which only test correctness);
 * `timing: false` leaves out every timing (after a crash in one of them). `avoid`: kernel classes
 * whose native kernel crashed in an earlier start, left out of the speed set.
 * `skip`: "case id|route" keys not to run (after a crash). `fault` ("cls/route:scale|nan|crash",
 * optionally "@text" to limit it to the cases whose id contains the text): a deliberately wrong
 * kernel for the self-check's own tests; only honoured in the candidate role.
 */
function readConfig(file) {
  const cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!cfg.package || !cfg.outDir || !['reference', 'candidate'].includes(cfg.role)) throw new Error(`kernel check: bad config ${file}`);
  return cfg;
}

/** Faults, comma-separated: "cls/route:kind[@text]". */
function parseFaults(spec) {
  if (!spec) return [];
  return spec.split(',').map((one) => {
    const m = /^([\w.]+)\/(\w+):(scale|nan|crash)(?:@(.+))?$/.exec(one.trim());
    if (!m) throw new Error(`kernel check: bad fault '${one}' (expected cls/route:scale|nan|crash[@text in the case id])`);
    return { cls: m[1], route: m[2], kind: m[3], only: m[4] };
  });
}

async function main() {
  if (process.argv[2] === '--list') {
    process.stdout.write(JSON.stringify({ version: CHECK_VERSION, cases: listCases() }));
    return;
  }
  const cfg = readConfig(process.argv[2]);
  const faults = cfg.role === 'candidate' ? parseFaults(cfg.fault) : [];
  const skip = new Set(cfg.skip ?? []);
  const require = createRequire(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'package.json'));
  const tf = require(cfg.package);
  await tf.setBackend('tensorflow');
  const ops = makeOps(tf, cfg.role === 'candidate' && loadRefconvOps(require));
  const progress = path.join(cfg.outDir, `${cfg.role}.progress`);
  const results = path.join(cfg.outDir, `${cfg.role}.jsonl`);
  const tfVersion = tf.backend().binding.TF_Version;
  fs.appendFileSync(results, `${JSON.stringify({ meta: { tfVersion, onednn: process.env.TF_ENABLE_ONEDNN_OPTS ?? '' } })}\n`);
  const cases = listCases();
  for (let ci = 0; ci < cases.length; ci++) {
    const c = cases[ci];
    const routes = cfg.role === 'reference' ? ['native'] : c.routes.filter((r) => r !== 'refconv' || ops.refconvOps);
    for (const route of routes) {
      const key = `${c.id}|${route}`;
      if (skip.has(key)) continue;
      // Written before the kernel runs: if the process dies inside it, this line names the case.
      fs.appendFileSync(progress, `${key}\n`);
      const fault = faults.find((f) => f.cls === c.cls && f.route === route && (!f.only || c.id.includes(f.only)));
      if (fault?.kind === 'crash') process.kill(process.pid, 'SIGFPE');
      const t0 = performance.now();
      const y = ops.run(c, route);
      const data = y.dataSync();
      const ms = performance.now() - t0;
      y.dispose();
      if (fault?.kind === 'scale') for (let i = 0; i < data.length; i += 3) data[i] *= 1.03;
      if (fault?.kind === 'nan') data[data.length >> 1] = NaN;
      const record = { key, cls: c.cls, route, ms: Math.round(ms * 10) / 10 };
      const file = path.join(cfg.outDir, `reference-${ci}.f32`);
      if (cfg.role === 'reference') {
        fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
        if (macs(c) <= 3e7 && ['conv', 'depthwise', 'matmul'].includes(c.kind)) {
          const inp = ops.inputsOf(c);
          record.float64Error = relativeL1(data, naive(c, inp));
          for (const t of Object.values(inp)) t.dispose();
        }
      } else {
        // No reference output (the trusted side died in this case): nothing to compare with.
        const buf = fs.existsSync(file) ? fs.readFileSync(file) : null;
        const want = buf && new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
        record.error = want && want.length === data.length ? relativeL1(data, want) : null;
      }
      fs.appendFileSync(results, `${JSON.stringify(record)}\n`);
    }
  }
  // The timing phases run kernels too (other shapes, batch 8): they write progress lines
  // ("timing|cls|route|id") so that a crash there is attributed to its kernel class as well, and
  // the parent restarts the child with `timing: false`.
  const timed = { progress, faults };
  if (cfg.role === 'candidate' && cfg.timing !== false) timeFilterGradients(cases, ops, results, skip, timed);
  const avoid = new Set(cfg.avoid ?? []);
  if (cfg.speed !== false && cfg.timing !== false) timeSpeedSet(ops, results, avoid, timed);
  if (cfg.speed !== false && cfg.timing !== false && !avoid.has('batchNorm.inference')) timeBatchNormInference(ops, results, timed);
  if (cfg.role === 'candidate' && cfg.timing !== false && ops.refconvOps) timeRefconvOps(cases, ops, results, skip, timed);
  fs.appendFileSync(results, `${JSON.stringify({ done: true })}\n`);
}

/**
 * The speed set on this side's kernels (oneDNN off in the reference child, on in the candidate):
 * one warm-up, then the median of 3 per case; one record per case. Cases of a class in `avoid`
 * (its native kernel crashed on this side: the runtime routes around it) are left out; the
 * verdict compares the cases both sides timed.
 */
function timeSpeedSet(ops, results, avoid, timed) {
  const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
  for (const c of speedCases()) {
    if (avoid.has(c.cls)) continue;
    beforeTimedKernel(timed, c.cls, 'native', c.id);
    const inp = ops.inputsOf(c);
    const times = [];
    for (let round = 0; round < 4; round++) {
      const t0 = performance.now();
      const y = ops.run(c, 'native', inp);
      y.dataSync();
      if (round > 0) times.push(performance.now() - t0);
      y.dispose();
    }
    for (const t of Object.values(inp)) t.dispose();
    fs.appendFileSync(results, `${JSON.stringify({ speed: c.id, cls: c.cls, ms: median(times) })}\n`);
  }
}

/**
 * Speed, for the one kernel choice made for speed (kernel-check.ts: `eigenFilterGradient`): the
 * filter gradient of every spatial conv case on oneDNN's kernel and on TF's Eigen kernel (EXPLICIT
 * padding), one warm-up each, then 5 rounds alternating the two; median ms per route. Timed without
 * reading the gradient back (tfjs-node runs kernels synchronously; in training it stays in
 * TensorFlow): for RefConv's transforms the gradient is a C x C x 3 x 3 tensor (33 MB at C = 960)
 * whose read-back made the times of that case swing from 11 to 107 ms between runs.
 */
function timeFilterGradients(cases, ops, results, skip, timed) {
  for (const c of cases) {
    if (c.cls !== 'conv.filterGrad' || skip.has(`${c.id}|native`) || skip.has(`${c.id}|explicit`)) continue;
    const ms = timeRoutes(c, ['native', 'explicit'], ops, timed, { rounds: 6, readBack: false });
    const { out } = convGeometry(c.h, c.k, c.stride, c.pad);
    fs.appendFileSync(results, `${JSON.stringify({ timing: c.id, cin: c.cin, k: c.k, outPositions: out * out, ...ms })}\n`);
  }
}

/**
 * One case on several routes: one warm-up each (with a progress line, so that a crash is
 * attributed to its kernel), then 3 rounds alternating the routes; median ms per route.
 */
function timeRoutes(c, routes, ops, timed, { rounds = 4, readBack = true } = {}) {
  const inp = ops.inputsOf(c);
  const times = Object.fromEntries(routes.map((r) => [r, []]));
  for (let round = 0; round < rounds; round++) {
    for (const route of routes) {
      if (round === 0) beforeTimedKernel(timed, c.cls, route, `${c.id} (timing)`);
      const t0 = performance.now();
      const outs = readBack ? [ops.run(c, route, inp)] : ops.runSeparate(c, route, inp);
      if (readBack) outs[0].dataSync();
      if (round > 0) times[route].push(performance.now() - t0);
      for (const t of outs) t.dispose();
    }
  }
  for (const t of Object.values(inp)) t.dispose();
  const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
  return Object.fromEntries(routes.map((r) => [r, median(times[r])]));
}

/** Inference-mode batch norm maps timed for the choice between TF's kernel and a scale + shift: [map size, channels], batch 8. */
const BN_INFERENCE_TIMING = [[112, 32], [56, 144], [28, 192], [14, 384], [7, 960]];

/**
 * Speed of inference-mode batch norm on this side (oneDNN off in the reference child, on in the
 * candidate): TF's FusedBatchNorm kernel (`native`) against a per-channel scale and shift
 * (`affine`), one warm-up each, then 3 rounds alternating the two; median ms per route.
 */
function timeBatchNormInference(ops, results, timed) {
  for (const [h, cin] of BN_INFERENCE_TIMING) {
    const c = { kind: 'batchNorm', h, cin, n: 8, op: 'inference', id: `batch norm ${h}x${h}x${cin} inference, batch 8`, cls: 'batchNorm.inference' };
    fs.appendFileSync(results, `${JSON.stringify({ bnTiming: c.id, ...timeRoutes(c, ['native', 'affine'], ops, timed) })}\n`);
  }
}

/**
 * Speed of RefConv's own kernels against TF's ops for the same work, at training sizes: the stem
 * max-pool gradient of ResNet at 224 px, batch 8, and an SGD update of 4 M weights; median ms per
 * route (candidate side; skipped for a class whose refconv route crashed). Also the per-kernel
 * transform and training batch norm; a class timed in several jobs is judged on their sum.
 */
function timeRefconvOps(cases, ops, results, skip, timed) {
  const timedCases = [
    { kind: 'maxPool', h: 114, cin: 64, k: 3, stride: 2, pad: 'valid', n: 8, id: 'max-pool grad 3x3 s2 114x114x64, batch 8', cls: 'maxPool.inputGrad' },
    { kind: 'sgd', size: 4 << 20, momentum: 0.9, dampening: 0, weightDecay: 1e-4, nesterov: false, id: 'sgd update 4M weights, weight decay', cls: 'sgd.update' },
    // ResNet-18's widest per-kernel transform (512 x 512 kernels), forward and transform gradient
    ...['forward', 'filterGrad'].map((op) => ({ kind: 'depthwise', h: 3, cin: 262144, cout: 262144, k: 3, stride: 1, pad: 'same', n: 1, op, id: `per-kernel refocus 3x3x262144 ${op}`, cls: 'refocus.perKernel' })),
    // training batch norm, forward and forward + gradient, on a wide early map, a MobileNetV2
    // expansion map and a late map (batch 8)
    ...[[112, 32], [56, 144], [14, 384]].flatMap(([h, cin]) => ['training', 'trainingGrad'].map((op) => ({
      kind: 'batchNorm', h, cin, n: 8, op, id: `batch norm ${h}x${h}x${cin} ${op}, batch 8`, cls: 'batchNorm.training',
    }))),
  ];
  for (const c of timedCases) {
    if (cases.some((x) => x.cls === c.cls && skip.has(`${x.id}|refconv`))) continue;
    // timed without reading the outputs back (tfjs-node runs kernels synchronously): in training
    // the results stay in TensorFlow, and a 16-32 MB read-back would dominate both sides
    const ms = timeRoutes(c, ['native', 'refconv'], ops, timed, { rounds: 6, readBack: false });
    fs.appendFileSync(results, `${JSON.stringify({ opTiming: c.id, cls: c.cls, ...ms })}\n`);
  }
}

/** Progress line before a timed kernel runs (and a crash fault of the self-check's tests). */
function beforeTimedKernel(timed, cls, route, id) {
  fs.appendFileSync(timed.progress, `timing|${cls}|${route}|${id}\n`);
  const fault = timed.faults.find((f) => f.kind === 'crash' && f.cls === cls && f.route === route && (!f.only || id.includes(f.only)));
  if (fault) process.kill(process.pid, 'SIGFPE');
}

main().catch((e) => {
  process.stderr.write(`kernel check (${process.argv[2]}): ${e.stack ?? e}\n`);
  process.exit(2);
});
