/**
 * `nx run bench:overhead`: what RefConv costs in a training step on our side, measured as the
 * issue's goal is stated (RefConv step time / plain step time, target <= 1.05). The plain model and
 * its refocused twin (every 3x3 conv, official grouping) each take a training step in turn, round
 * after round in one process, so that this host's drift (individual steps move by 10-20 % here)
 * hits both alike; `bench:train` measures the same ratio but interleaved with PyTorch and over
 * fewer rounds. Prints the median step times, their ratio, the median and quartiles of the
 * per-round ratios, and the optimizer update's share (median of 3 steps each).
 *
 *   npx nx run bench:overhead -- [--archs resnet18,mobilenet_v2] [--size 224] [--batch 32] [--rounds 12] [--warmup 2]
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { createModel } from '@refconv/backbones';
import { cpuDescription, describeBackend, initBackend, refocus } from '@refconv/core';
import { makeTrainStep, median, timeOnce } from './measure.js';

const argv = yargs(hideBin(process.argv))
  .scriptName('bench:overhead')
  .option('archs', { type: 'string', default: 'resnet18,mobilenet_v2' })
  .option('size', { type: 'number', default: 224 })
  .option('batch', { type: 'number', default: 32 })
  .option('rounds', { type: 'number', default: 12, describe: 'timed rounds (one plain and one RefConv step each)' })
  .option('warmup', { type: 'number', default: 2, describe: 'untimed rounds first (the heap still grows during the second)' })
  .strict()
  .parseSync();

/** The q-quantile of a list (nearest rank). */
function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))]!;
}

console.log(describeBackend(await initBackend()));
console.log(`${cpuDescription()}; ${argv.size} px, batch ${argv.batch}; ${argv.rounds} rounds after ${argv.warmup} warm-up rounds, plain and RefConv alternating`);
console.log('| arch | plain ms | RefConv ms | RefConv / plain (medians) | per-round ratio: median [quartiles] | update ms plain, RefConv |');
console.log('|---|---:|---:|---:|---|---|');
for (const arch of argv.archs.split(',')) {
  const plainModel = createModel(arch, { inputSize: argv.size, numClasses: 1000 });
  const refModel = refocus(createModel(arch, { inputSize: argv.size, numClasses: 1000 }), { seed: 1 });
  const plain = makeTrainStep(plainModel, argv.batch);
  const ref = makeTrainStep(refModel, argv.batch);
  for (let i = 0; i < argv.warmup; i++) {
    plain.run();
    ref.run();
  }
  const tp: number[] = [];
  const tr: number[] = [];
  for (let i = 0; i < argv.rounds; i++) {
    tp.push(timeOnce(() => plain.run()) * 1000);
    tr.push(timeOnce(() => ref.run()) * 1000);
  }
  const update = (s: typeof plain) => median(Array.from({ length: 3 }, () => s.runPhases!().updateMs));
  const [up, ur] = [update(plain), update(ref)];
  const ratios = tp.map((t, i) => tr[i]! / t);
  console.log(`| ${arch} | ${median(tp).toFixed(0)} | ${median(tr).toFixed(0)} | **${(median(tr) / median(tp)).toFixed(3)}x** | ` +
    `${median(ratios).toFixed(3)} [${quantile(ratios, 0.25).toFixed(3)}, ${quantile(ratios, 0.75).toFixed(3)}] | ${up.toFixed(1)}, ${ur.toFixed(1)} |`);
  plain.dispose();
  ref.dispose();
  plainModel.dispose();
  refModel.dispose();
}
