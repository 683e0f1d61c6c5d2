/**
 * `nx run bench:ops-ab`: what RefConv's own TF kernels (`@refconv/core` native/refconv_ops.cc: the
 * one-pass SGD update, the max-pool gradient and, with `--refconv`, the per-kernel transform and
 * its gradient) are worth in a training step on this host. The
 * same model's training step (engine's SGD, momentum 0.9) runs with the kernels on and off,
 * alternating step by step in one process; prints the median step times and their ratio.
 *
 *   npx nx run bench:ops-ab -- [--archs resnet18,mobilenet_v2] [--size 224] [--batch 32] [--steps 5] [--refconv]
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { createModel } from '@refconv/backbones';
import { applyKernelPlan, cpuDescription, initBackend, refocus } from '@refconv/core';
import { makeTrainStep, median, timeOnce } from './measure.js';

const argv = yargs(hideBin(process.argv))
  .option('archs', { type: 'string', default: 'resnet18,mobilenet_v2' })
  .option('size', { type: 'number', default: 224 })
  .option('batch', { type: 'number', default: 32 })
  .option('steps', { type: 'number', default: 5 })
  .option('refconv', { type: 'boolean', default: false, describe: 'refocus every 3x3 conv first (official grouping)' })
  .strict()
  .parseSync();

const info = await initBackend();
const plan = info.kernelPlan;
if (!plan) throw new Error(`bench:ops-ab needs the native CPU backend (got ${info.backend})`);
console.log(`${cpuDescription()}; ${argv.refconv ? 'RefConv' : 'plain'} models, ${argv.size} px, batch ${argv.batch}, median of ${argv.steps} alternating steps`);
console.log('arch | kernels off ms | kernels on ms | off / on');
for (const arch of argv.archs.split(',')) {
  const plain = createModel(arch, { inputSize: argv.size, numClasses: 1000 });
  const model = argv.refconv ? refocus(plain, { seed: 1 }) : plain;
  const step = makeTrainStep(model, argv.batch);
  const set = (on: boolean) => applyKernelPlan({ ...plan, refconvOps: { sgdUpdate: on, maxPoolGrad: on, perKernelRefocus: on } });
  const times: Record<'off' | 'on', number[]> = { off: [], on: [] };
  set(true);
  step.run(); // warm-up (creates the momentum buffers)
  set(false);
  step.run();
  for (let i = 0; i < argv.steps; i++) {
    for (const mode of ['off', 'on'] as const) {
      set(mode === 'on');
      times[mode].push(timeOnce(() => step.run()));
    }
  }
  step.dispose();
  const [off, on] = [median(times.off) * 1000, median(times.on) * 1000];
  console.log(`${arch} | ${off.toFixed(0)} | ${on.toFixed(0)} | ${(off / on).toFixed(2)}x`);
}
applyKernelPlan(plan);
