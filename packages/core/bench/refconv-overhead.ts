/**
 * `nx run core:bench`: how much a RefConv training step costs over the plain model's step.
 *
 * Builds ResNet-18- and MobileNetV2-shaped networks from tf.layers (core depends on no other
 * package of ours), refocuses every 3x3 conv, and times full SGD training steps (forward,
 * backward, update) of the plain and the refocused model, interleaved step by step so that load
 * from other processes hits both alike. Prints ms/step and the ratio refconv/plain.
 *
 *   nx run core:bench -- [--size 224] [--batch 32] [--steps 5] [--models resnet18,mobilenetv2] [--json]
 *
 * `--eigen-ab` instead times the plain model's step (`--refconv`: the refocused model's) with TF's
 * Eigen filter-gradient speed route off and on for `--maps small|large|all` output maps
 * (interleaved; the kernel self-check's choice for this host is printed by the first line): what
 * the choice is worth on this CPU.
 */
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { describeBackend, initBackend } from '../src/backend.js';
import { activeKernelRoutes, applyKernelPlan } from '../src/fast-kernels.js';
import { refConvLayers, refocus } from '../src/refocus.js';

type Builder = (size: number) => tf.LayersModel;

function convBn(x: tf.SymbolicTensor, filters: number, k: number, stride: number, name: string, relu = true): tf.SymbolicTensor {
  let y = x;
  if (stride > 1 && k > 1) y = tf.layers.zeroPadding2d({ padding: Math.floor(k / 2), name: `${name}_pad` }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.conv2d({ filters, kernelSize: k, strides: stride, padding: stride > 1 && k > 1 ? 'valid' : 'same', useBias: false, name }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.batchNormalization({ epsilon: 1e-5, momentum: 0.9, name: `${name}_bn` }).apply(y) as tf.SymbolicTensor;
  return relu ? (tf.layers.reLU({ name: `${name}_relu` }).apply(y) as tf.SymbolicTensor) : y;
}

const resnet18: Builder = (size) => {
  const input = tf.input({ shape: [size, size, 3] });
  let x = convBn(input, 64, 7, 2, 'conv1');
  x = tf.layers.zeroPadding2d({ padding: 1 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ poolSize: 3, strides: 2 }).apply(x) as tf.SymbolicTensor;
  let cin = 64;
  [64, 128, 256, 512].forEach((planes, stage) => {
    for (let b = 0; b < 2; b++) {
      const stride = stage > 0 && b === 0 ? 2 : 1;
      const name = `layer${stage + 1}_${b}`;
      let y = convBn(x, planes, 3, stride, `${name}_conv1`);
      y = convBn(y, planes, 3, 1, `${name}_conv2`, false);
      const skip = stride !== 1 || cin !== planes ? convBn(x, planes, 1, stride, `${name}_down`, false) : x;
      x = tf.layers.reLU().apply(tf.layers.add().apply([y, skip]) as tf.SymbolicTensor) as tf.SymbolicTensor;
      cin = planes;
    }
  });
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 1000 }).apply(x) as tf.SymbolicTensor, name: 'resnet18' });
};

const mobilenetv2: Builder = (size) => {
  const input = tf.input({ shape: [size, size, 3] });
  let x = convBn(input, 32, 3, 2, 'stem');
  let cin = 32;
  const cfg: Array<[number, number, number, number]> = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]];
  let idx = 0;
  for (const [t, c, n, s] of cfg) {
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1;
      const name = `block${idx++}`;
      let y = x;
      if (t !== 1) y = convBn(y, cin * t, 1, 1, `${name}_expand`);
      if (stride > 1) y = tf.layers.zeroPadding2d({ padding: 1 }).apply(y) as tf.SymbolicTensor;
      y = tf.layers.depthwiseConv2d({ kernelSize: 3, strides: stride, padding: stride > 1 ? 'valid' : 'same', useBias: false, name: `${name}_dw` }).apply(y) as tf.SymbolicTensor;
      y = tf.layers.batchNormalization({ epsilon: 1e-5, name: `${name}_dw_bn` }).apply(y) as tf.SymbolicTensor;
      y = tf.layers.reLU({ maxValue: 6 }).apply(y) as tf.SymbolicTensor;
      y = convBn(y, c, 1, 1, `${name}_project`, false);
      x = stride === 1 && cin === c ? (tf.layers.add().apply([x, y]) as tf.SymbolicTensor) : y;
      cin = c;
    }
  }
  x = convBn(x, 1280, 1, 1, 'head');
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 1000 }).apply(x) as tf.SymbolicTensor, name: 'mobilenetv2' });
};

const BUILDERS: Record<string, Builder> = { resnet18, mobilenetv2 };

function makeStep(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor): () => void {
  const opt = tf.train.momentum(0.01, 0.9);
  const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  return () => {
    tf.tidy(() => {
      const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars);
      opt.applyGradients(grads);
    });
  };
}

function time(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * A model's training step with the Eigen filter-gradient route off, then on for the output maps
 * `maps` (`small`: <= 7x7, e.g. RefConv's 3x3 transform maps; `large`; `all`), interleaved;
 * restores the host's plan.
 */
function eigenAB(name: string, model: tf.LayersModel, size: number, batch: number, steps: number,
  plan: { eigenFilterGradient: boolean; eigenFilterGradientCorrect?: boolean; eigenFilterGradientMaps?: { small: boolean; large: boolean } } | undefined,
  json: boolean, maps: 'small' | 'large' | 'all'): Record<string, number | string> {
  if (!plan?.eigenFilterGradientCorrect) throw new Error("--eigen-ab: TF's Eigen filter gradient did not pass the kernel self-check on this host (or oneDNN is off)");
  const routes = activeKernelRoutes();
  const route = (on: boolean) => applyKernelPlan({
    routes, eigenFilterGradient: on, eigenFilterGradientCorrect: true,
    eigenFilterGradientMaps: { small: on && maps !== 'large', large: on && maps !== 'small' },
  });
  const x = tf.randomNormal([batch, size, size, 3]);
  const y = tf.oneHot(tf.randomUniform([batch], 0, 1000, 'int32'), 1000);
  const step = makeStep(model, x, y);
  const off: number[] = [];
  const on: number[] = [];
  for (let i = -1; i < steps; i++) {
    route(false);
    const a = time(step);
    route(true);
    const b = time(step);
    if (i >= 0) {
      off.push(a);
      on.push(b);
    }
  }
  applyKernelPlan({ routes, eigenFilterGradient: plan.eigenFilterGradient, eigenFilterGradientCorrect: true, eigenFilterGradientMaps: plan.eigenFilterGradientMaps });
  tf.dispose([x, y]);
  const row = { model: name, size, batch, oneDnnFilterGradMs: median(off), eigenFilterGradMs: median(on), ratio: median(on) / median(off) };
  if (!json) {
    console.log(`${name} ${size}px batch ${batch}: filter gradients on oneDNN ${row.oneDnnFilterGradMs.toFixed(0)} ms/step, on Eigen (>= 64 channels, ${maps} maps) ${row.eigenFilterGradMs.toFixed(0)} ms/step, Eigen/oneDNN step time ${row.ratio.toFixed(3)}x`);
  }
  return row;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '224' },
      batch: { type: 'string', default: '32' },
      steps: { type: 'string', default: '5' },
      models: { type: 'string', default: 'resnet18,mobilenetv2' },
      json: { type: 'boolean', default: false },
      backend: { type: 'string' },
      'eigen-ab': { type: 'boolean', default: false },
      maps: { type: 'string', default: 'all' },
      refconv: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const info = await initBackend(values.backend as never);
  const size = Number(values.size);
  const batch = Number(values.batch);
  const steps = Number(values.steps);
  if (!values.json) console.log(describeBackend(info));
  const rows: Array<Record<string, number | string>> = [];
  for (const name of values.models!.split(',')) {
    const build = BUILDERS[name];
    if (!build) throw new Error(`unknown model '${name}' (choose from ${Object.keys(BUILDERS).join(', ')})`);
    const plain = build(size);
    if (values['eigen-ab']) {
      if (!['small', 'large', 'all'].includes(values.maps!)) throw new Error(`--maps ${values.maps}: choose small, large or all`);
      const model = values.refconv ? refocus(plain, { seed: 1 }) : plain;
      rows.push(eigenAB(values.refconv ? `${name} RefConv` : name, model, size, batch, steps, info.kernelPlan, Boolean(values.json), values.maps as 'small' | 'large' | 'all'));
      plain.dispose();
      continue;
    }
    const ref = refocus(plain, { seed: 1 });
    const x = tf.randomNormal([batch, size, size, 3]);
    const y = tf.oneHot(tf.randomUniform([batch], 0, 1000, 'int32'), 1000);
    const stepPlain = makeStep(plain, x, y);
    const stepRef = makeStep(ref, x, y);
    stepPlain();
    stepRef();
    const tp: number[] = [];
    const tr: number[] = [];
    for (let i = 0; i < steps; i++) {
      tp.push(time(stepPlain));
      tr.push(time(stepRef));
    }
    const layers = refConvLayers(ref);
    const tk = median(Array.from({ length: 5 }, () => time(() => tf.tidy(() => layers.forEach((l) => l.refocusedKernel().dataSync())))));
    const row = { model: name, size, batch, refconvLayers: layers.length, plainMs: median(tp), refconvMs: median(tr), ratio: median(tr) / median(tp), kernelsMs: tk };
    rows.push(row);
    if (!values.json) {
      console.log(`${name} ${size}px batch ${batch}: plain ${row.plainMs.toFixed(0)} ms/step, RefConv (${layers.length} layers) ${row.refconvMs.toFixed(0)} ms/step, ratio ${row.ratio.toFixed(3)}x; computing all W_t alone ${tk.toFixed(1)} ms`);
    }
    tf.dispose([x, y]);
    plain.dispose();
    ref.dispose();
  }
  if (values.json) console.log(JSON.stringify({ backend: describeBackend(info), rows }));
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
