/**
 * `nx run bench:train`: training and inference throughput of this project against PyTorch on the
 * same machine, side by side.
 *
 * For each architecture and input config it measures, in one run, our plain training, RefConv
 * training (every 3x3 conv refocused), plain inference and fused-RefConv inference, then runs
 * `tools/torch_bench.py` (torchvision models, RefConv written for the benchmark) on the same
 * config, and prints images/s and the ratio ours / PyTorch. The Python environment is created by
 * `tools/setup-venv.sh` on first use.
 *
 *   nx run bench:train -- [--archs resnet18,mobilenet_v2,mobilenet_v3_large] [--configs imagenet,small]
 *                         [--steps 3] [--rounds 1] [--no-torch] [--json out.json]
 *
 * With `--rounds R` > 1 the pair (ours, PyTorch) is measured R times in alternation and each rate
 * is the median over the rounds: on a shared 2-core VM single runs move by +-15 %, and
 * alternating keeps slow phases of the machine from landing on one side only.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { createModel } from '@refconv/backbones';
import { describeBackend, fuse, initBackend, refocus } from '@refconv/core';
import * as tf from '@tensorflow/tfjs';
import { inferThroughput, makeTrainStep, trainThroughput } from './measure.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CONFIGS: Record<string, { size: number; batch: number }> = {
  imagenet: { size: 224, batch: 32 },
  small: { size: 64, batch: 32 },
};

interface Rates { trainPlain: number; trainRefconv: number; inferPlain: number; inferFused: number }
interface Row {
  arch: string; config: string; size: number; batch: number;
  /** Median over the rounds. */
  ours: Rates; torch?: Rates;
  /** Every round's rates (one entry per round). */
  samples: { ours: Rates[]; torch: Rates[] };
}

const RATE_KEYS: (keyof Rates)[] = ['trainPlain', 'trainRefconv', 'inferPlain', 'inferFused'];

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Per-rate median of several rounds. */
function medianRates(rounds: Rates[]): Rates {
  return Object.fromEntries(RATE_KEYS.map((k) => [k, median(rounds.map((r) => r[k]))])) as unknown as Rates;
}

function measureOurs(arch: string, size: number, batch: number, steps: number): Rates {
  const plain = createModel(arch, { inputSize: size, numClasses: 1000 });
  const trainPlain = trainThroughput(plain, batch, steps);
  const inferPlain = inferThroughput(plain, batch, steps);
  const ref = refocus(plain, { seed: 1 });
  const trainRefconv = trainThroughput(ref, batch, steps);
  const fused = fuse(ref);
  const inferFused = inferThroughput(fused, batch, steps);
  [plain, ref, fused].forEach((m) => m.dispose());
  return { trainPlain, trainRefconv, inferPlain, inferFused };
}

/** Runs `steps` RefConv training steps of a small model and reports tf.memory() before and after. */
function leakCheck(steps: number): { steps: number; before: number; after: number } {
  const model = refocus(createModel('cifar_resnet20', { inputSize: 32, numClasses: 10 }), { seed: 1 });
  const step = makeTrainStep(model, 8);
  step.run();
  const before = tf.memory().numTensors;
  for (let i = 0; i < steps; i++) step.run();
  const after = tf.memory().numTensors;
  step.dispose();
  model.dispose();
  return { steps, before, after };
}

function torchPython(): string {
  return execFileSync(path.join(here, '..', 'tools', 'setup-venv.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop() as string;
}

function measureTorch(python: string, arch: string, size: number, batch: number, steps: number): { rates: Rates; version: string; threads: number } {
  const out = execFileSync(python, [path.join(here, '..', 'tools', 'torch_bench.py'), '--arch', arch, '--size', String(size), '--batch', String(batch), '--steps', String(steps), '--threads', String(os.cpus().length)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const parsed = JSON.parse(out.trim().split('\n').pop() as string);
  const { trainPlain, trainRefconv, inferPlain, inferFused } = parsed.row;
  return { rates: { trainPlain, trainRefconv, inferPlain, inferFused }, version: parsed.torch, threads: parsed.threads };
}

const f1 = (v: number) => v.toFixed(1).padStart(7);
const ratio = (a: number, b?: number) => (b ? (a / b).toFixed(2).padStart(6) : '     -');

function printTable(rows: Row[]): void {
  console.log(`\nimages/s (ours / PyTorch = ratio)${rows[0] && rows[0].samples.ours.length > 1 ? `, median of ${rows[0].samples.ours.length} alternating rounds` : ''}`);
  console.log('arch                 config     | train plain            | train RefConv          | RefConv/plain ours torch | infer plain            | infer fused');
  for (const r of rows) {
    const t = r.torch;
    const cell = (k: keyof Rates) => `${f1(r.ours[k])} /${t ? f1(t[k]) : '      -'} =${ratio(r.ours[k], t?.[k])}`;
    const overhead = `${(r.ours.trainPlain / r.ours.trainRefconv).toFixed(2)}x ${t ? (t.trainPlain / t.trainRefconv).toFixed(2) + 'x' : '-'}`;
    console.log(`${r.arch.padEnd(20)} ${`${r.config}(${r.size})`.padEnd(10)} | ${cell('trainPlain')} | ${cell('trainRefconv')} | ${overhead.padEnd(24)} | ${cell('inferPlain')} | ${cell('inferFused')}`);
  }
  console.log('(RefConv/plain = training step time of RefConv over plain; target <= 1.05)');
}

async function main(): Promise<void> {
  const argv = await yargs(hideBin(process.argv))
    .scriptName('bench:train')
    .option('archs', { type: 'string', default: 'resnet18,mobilenet_v2,mobilenet_v3_large' })
    .option('configs', { type: 'string', default: 'imagenet,small' })
    .option('steps', { type: 'number', default: 3 })
    .option('rounds', { type: 'number', default: 1, describe: 'measure ours and PyTorch this many times, alternating; report medians' })
    .option('torch', { type: 'boolean', default: true, describe: 'also run PyTorch (--no-torch to skip)' })
    .option('json', { type: 'string', describe: 'write the results as one JSON object to this file' })
    .option('leak-steps', { type: 'number', default: 1000, describe: 'RefConv training steps of a small model over which tf.memory() must stay constant (0 to skip)' })
    .option('backend', { type: 'string' })
    .strict()
    .parseAsync();
  if (!(Number.isInteger(argv.rounds) && argv.rounds >= 1)) throw new Error(`--rounds must be a positive integer, got ${argv.rounds}`);
  if (!(Number.isInteger(argv.steps) && argv.steps >= 1)) throw new Error(`--steps must be a positive integer, got ${argv.steps}`);
  const info = await initBackend(argv.backend as never);
  console.log(`ours:    ${describeBackend(info)}; TensorFlow intra-op threads: ${process.env.TF_NUM_INTRAOP_THREADS ?? `TF default (${os.cpus().length} cores)`}`);
  const python = argv.torch ? torchPython() : null;
  let torchInfo = '';
  const rows: Row[] = [];
  for (const config of argv.configs.split(',')) {
    const c = CONFIGS[config];
    if (!c) throw new Error(`unknown config '${config}' (${Object.keys(CONFIGS).join(', ')})`);
    for (const arch of argv.archs.split(',')) {
      process.stdout.write(`measuring ${arch} ${config} (${c.size}px, batch ${c.batch}) ...`);
      const samples: Row['samples'] = { ours: [], torch: [] };
      for (let round = 0; round < argv.rounds; round++) {
        samples.ours.push(measureOurs(arch, c.size, c.batch, argv.steps));
        if (python) {
          const t = measureTorch(python, arch, c.size, c.batch, argv.steps);
          samples.torch.push(t.rates);
          torchInfo = `PyTorch ${t.version} CPU, ${t.threads} threads, channels_last`;
        }
        if (argv.rounds > 1) process.stdout.write(` ${round + 1}`);
      }
      const row: Row = { arch, config, size: c.size, batch: c.batch, ours: medianRates(samples.ours), samples };
      if (samples.torch.length) row.torch = medianRates(samples.torch);
      rows.push(row);
      console.log(' done');
    }
  }
  if (torchInfo) console.log(`PyTorch: ${torchInfo}`);
  let leak: { steps: number; before: number; after: number } | undefined;
  if (argv.leakSteps > 0) {
    leak = leakCheck(argv.leakSteps);
    console.log(`tensor leak check: ${leak.steps} RefConv training steps of cifar_resnet20 (32 px, batch 8): tf.memory().numTensors ${leak.before} -> ${leak.after}${leak.before === leak.after ? ' (stable)' : ' (LEAK)'}`);
  }
  printTable(rows);
  if (argv.json) {
    fs.writeFileSync(argv.json, JSON.stringify({ ours: describeBackend(info), torch: torchInfo, rows, leak }, null, 2));
    console.log(`wrote ${argv.json}`);
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
