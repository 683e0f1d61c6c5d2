/**
 * `nx run bench:profile`: where the time of one training step goes. Runs `tf.profile` over one
 * SGD step (after two warm-up steps) of a @refconv/backbones model and prints kernel time per kernel
 * name, its share of the summed kernel time, and the call count, so a missed speed target can be
 * traced to the kernels that bound it.
 *
 *   npx nx run bench:profile -- --arch resnet18 [--size 224] [--batch 32] [--refconv] [--infer] [--native] [--top 15] [--trace 8]
 *
 * `--infer` profiles one inference batch (eager `predict`, kernel by kernel) instead of a training
 * step, then times the same batch compiled (`compileForInference`, what the evaluators run).
 *
 * `--native` also lists the time of every TensorFlow op the step executes, by op name: tf.profile
 * sees tfjs kernels only, and the native routes' gradient functions (batch norm, ReLU, the conv
 * gradients' routes) call TF ops directly, outside any kernel. tfjs-node runs CPU ops
 * synchronously, so the wall time of each call is the op's time.
 */
import * as tf from '@tensorflow/tfjs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { createModel } from '@refconv/backbones';
import { compileForInference, describeBackend, initBackend, refocus } from '@refconv/core';
import { makeInferStep, makeTrainStep, median, timeOnce } from './measure.js';

async function main(): Promise<void> {
  const argv = await yargs(hideBin(process.argv))
    .scriptName('bench:profile')
    .option('arch', { type: 'string', default: 'resnet18' })
    .option('size', { type: 'number', default: 224 })
    .option('batch', { type: 'number', default: 32 })
    .option('refconv', { type: 'boolean', default: false, describe: 'profile the refocused model' })
    .option('infer', { type: 'boolean', default: false, describe: 'profile one inference batch instead of a training step' })
    .option('top', { type: 'number', default: 15, describe: 'kernel names to list' })
    .option('native', { type: 'boolean', default: false, describe: 'also time every TensorFlow op call by op name (gradient functions included)' })
    .option('trace', { type: 'number', default: 0, describe: 'first print wall time, CPU time and page faults of each of this many steps from the first (warm-up visible)' })
    .strict()
    .parseAsync();
  console.log(describeBackend(await initBackend()));
  const plain = createModel(argv.arch, { inputSize: argv.size, numClasses: 1000 });
  const model = argv.refconv ? refocus(plain, { seed: 1 }) : plain;
  const step = argv.infer ? makeInferStep(model, argv.batch) : makeTrainStep(model, argv.batch);
  for (let i = 0; i < argv.trace; i++) {
    const [u0, t0] = [process.resourceUsage(), performance.now()];
    step.run();
    const [u1, ms] = [process.resourceUsage(), performance.now() - t0];
    console.log(`step ${i + 1}: ${ms.toFixed(0)} ms wall, user CPU ${((u1.userCPUTime - u0.userCPUTime) / 1000).toFixed(0)} ms, ` +
      `system CPU ${((u1.systemCPUTime - u0.systemCPUTime) / 1000).toFixed(0)} ms, minor page faults ${u1.minorPageFault - u0.minorPageFault}`);
  }
  // Two warm-up runs: the first builds kernels and caches, and the heap still grows during the
  // second (for RefConv MobileNetV2, 500-600 page faults and ~1.8 s of system CPU in step 2,
  // ~100-200 faults and ~0.1-0.2 s from step 3 on, on the AMD EPYC AVX-512 host), which a
  // profile of the second step mistook for a steady cost.
  step.run();
  step.run();
  const usage0 = process.resourceUsage();
  const t0 = performance.now();
  const info = await tf.profile(() => step.run());
  const wall = performance.now() - t0;
  const usage1 = process.resourceUsage();
  const byName = new Map<string, { ms: number; calls: number }>();
  // tf.profile also lists the op wrapper around a fused kernel (`fusedConv2d__op` around
  // `FusedConv2D`) with the same time; count the kernel only.
  const kernels = info.kernels.filter((kk) => !kk.name.endsWith('__op'));
  for (const k of kernels) {
    const e = byName.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += Number(k.kernelTimeMs) || 0;
    e.calls += 1;
    byName.set(k.name, e);
  }
  const total = [...byName.values()].reduce((s, e) => s + e.ms, 0);
  console.log(`${argv.arch}${argv.refconv ? ' (RefConv)' : ''}, ${argv.size} px, batch ${argv.batch}: one ${argv.infer ? 'inference batch' : 'training step'}, ${kernels.length} kernel calls, ` +
    `summed kernel time ${total.toFixed(0)} ms, wall ${wall.toFixed(0)} ms (profiling adds a sync per kernel)`);
  // System CPU time and minor page faults: the cost of first touching freshly allocated tensor memory.
  console.log(`process during the step: user CPU ${((usage1.userCPUTime - usage0.userCPUTime) / 1000).toFixed(0)} ms, ` +
    `system CPU ${((usage1.systemCPUTime - usage0.systemCPUTime) / 1000).toFixed(0)} ms, minor page faults ${usage1.minorPageFault - usage0.minorPageFault}`);
  console.log('| kernel | ms | share | calls |\n|---|---:|---:|---:|');
  for (const [name, e] of [...byName].sort((a, b) => b[1].ms - a[1].ms).slice(0, argv.top)) {
    console.log(`| ${name} | ${e.ms.toFixed(0)} | ${((100 * e.ms) / total).toFixed(1)}% | ${e.calls} |`);
  }
  if (argv.native) printNativeOps(step.run, argv.top);
  if (argv.infer) {
    // What the evaluators run: the model compiled for TensorFlow's graph runtime, which tf.profile
    // cannot look into (one session call); its wall time per batch next to the eager one above.
    const compiled = await compileForInference(model, { onMismatch: 'throw' });
    const graphStep = makeInferStep(model, argv.batch, 0, (x) => compiled.predict(x));
    const eagerMs: number[] = [];
    const graphMs: number[] = [];
    graphStep.run();
    for (let i = 0; i < 3; i++) {
      eagerMs.push(timeOnce(() => step.run()) * 1000);
      graphMs.push(timeOnce(() => graphStep.run()) * 1000);
    }
    const [e, g] = [median(eagerMs), median(graphMs)];
    console.log(`compileForInference (${compiled.verification}): ${g.toFixed(0)} ms per batch, eager predict ${e.toFixed(0)} ms (${(e / g).toFixed(2)}x faster compiled; median of 3 each, interleaved)`);
    graphStep.dispose();
    compiled.dispose();
  }
  if (!argv.infer && step.runPhases) {
    // Where a training step's time goes between the network (forward + backward) and the optimizer
    // update, which touches every weight: for RefConv the update also covers the transforms' weights
    // (MobileNetV2's dense C x C x 3 x 3 transforms of its depthwise convs: ~40 M), a pure memory-
    // bandwidth cost. Compared with a copy pass over as many floats, the bandwidth bound of this host.
    const phases = Array.from({ length: 3 }, () => step.runPhases!()).sort((a, b) => a.updateMs - b.updateMs)[1]!;
    const copyMs = tf.tidy(() => {
      const a = tf.fill([phases.weights], 1);
      const t0 = performance.now();
      for (let i = 0; i < 3; i++) tf.add(a, 0).dispose();
      return (performance.now() - t0) / 3;
    });
    console.log(`phases (median of 3 steps): forward + backward ${phases.gradientsMs.toFixed(0)} ms, optimizer update ${phases.updateMs.toFixed(0)} ms for ${(phases.weights / 1e6).toFixed(2)} M weights ` +
      `(${(phases.updateMs / copyMs).toFixed(1)}x one elementwise pass over as many floats, ${copyMs.toFixed(0)} ms here)`);
  }
  step.dispose();
}

/** The tfjs-node backend's two entry points into TensorFlow's eager runtime. */
interface NativeEntryPoints {
  executeSingleOutput: (name: string, ...rest: unknown[]) => unknown;
  executeMultipleOutputs: (name: string, ...rest: unknown[]) => unknown;
}

/**
 * Runs `run` once with every TensorFlow op call timed (wall time per call, by op name) and prints
 * the table: what the step costs in TF ops, gradient functions included.
 */
function printNativeOps(run: () => void, top: number): void {
  const backend = tf.backend() as unknown as NativeEntryPoints;
  const byOp = new Map<string, { ms: number; calls: number }>();
  const originals = { single: backend.executeSingleOutput, multiple: backend.executeMultipleOutputs };
  const timed = <F extends (name: string, ...rest: unknown[]) => unknown>(f: F) => function (this: unknown, name: string, ...rest: unknown[]) {
    const t0 = performance.now();
    try {
      return f.call(this, name, ...rest);
    } finally {
      const e = byOp.get(name) ?? { ms: 0, calls: 0 };
      e.ms += performance.now() - t0;
      e.calls += 1;
      byOp.set(name, e);
    }
  };
  backend.executeSingleOutput = timed(originals.single);
  backend.executeMultipleOutputs = timed(originals.multiple);
  const t0 = performance.now();
  try {
    run();
  } finally {
    backend.executeSingleOutput = originals.single;
    backend.executeMultipleOutputs = originals.multiple;
  }
  const wall = performance.now() - t0;
  const total = [...byOp.values()].reduce((a, e) => a + e.ms, 0);
  console.log(`TensorFlow ops of one step: ${total.toFixed(0)} ms in ${[...byOp.values()].reduce((a, e) => a + e.calls, 0)} calls, wall ${wall.toFixed(0)} ms`);
  console.log('| TF op | ms | share | calls |\n|---|---:|---:|---:|');
  for (const [name, e] of [...byOp].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) {
    console.log(`| ${name} | ${e.ms.toFixed(0)} | ${((100 * e.ms) / total).toFixed(1)}% | ${e.calls} |`);
  }
}

await main();
