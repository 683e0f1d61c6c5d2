/**
 * `nx run bench:train`: training and inference throughput of this project against PyTorch on the
 * same machine, side by side.
 *
 * For each architecture and input config it builds our four workloads (plain training, RefConv
 * training with every 3x3 conv refocused, plain inference, fused-RefConv inference) and starts
 * `tools/torch_bench.py --serve` with PyTorch's four (torchvision models, RefConv written for the
 * benchmark). Then it runs `--steps` rounds; each round times one step of every workload on our
 * side and then the same step on PyTorch's, so slow phases of a shared machine fall on both sides
 * alike. Rates are batch / median step time; the table prints images/s and the ratio
 * ours / PyTorch. The Python environment is created by `tools/setup-venv.sh` on first use.
 *
 *   nx run bench:train -- [--archs resnet18,mobilenet_v2,mobilenet_v3_large] [--configs imagenet,small]
 *                         [--steps 5] [--infer-runtime graph|eager] [--no-torch] [--json out.json]
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { createModel } from '@refconv/backbones';
import { compileForInference, describeBackend, fuse, initBackend, refocus } from '@refconv/core';
import * as tf from '@tensorflow/tfjs';
import { makeInferStep, makeTrainStep, median, readCpuTimes, stealShare, timeOnce, type TrainStep } from './measure.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CONFIGS: Record<string, { size: number; batch: number }> = {
  imagenet: { size: 224, batch: 32 },
  small: { size: 64, batch: 32 },
};

const KINDS = ['trainPlain', 'trainRefconv', 'inferPlain', 'inferFused'] as const;
type Kind = (typeof KINDS)[number];
type Rates = Record<Kind, number>;
type StepTimes = Record<Kind, number[]>;

interface Row {
  arch: string;
  config: string;
  size: number;
  batch: number;
  /** images/s = batch / median step time. */
  ours: Rates;
  torch?: Rates;
  /** Every timed step, in seconds, in round order. */
  seconds: { ours: StepTimes; torch?: StepTimes };
  /** Hypervisor steal during this row's measurement (share of CPU time), if the OS reports it. */
  steal: number | null;
}

/**
 * Our four workloads for one arch/config, built once and reused every round. Inference runs as
 * the project's evaluators run it (`--infer-runtime graph`, default: `compileForInference`, i.e.
 * fused, BN folded, TensorFlow's graph runtime) or op by op (`eager`: `model.predict`).
 */
async function ourSteps(arch: string, size: number, batch: number, runtime: 'graph' | 'eager'): Promise<{ steps: Record<Kind, TrainStep>; dispose(): void }> {
  const plain = createModel(arch, { inputSize: size, numClasses: 1000 });
  const ref = refocus(plain, { seed: 1 });
  const fused = fuse(ref);
  const compiled = runtime === 'graph' ? await Promise.all([compileForInference(plain, { onMismatch: 'throw' }), compileForInference(fused, { onMismatch: 'throw' })]) : [];
  const steps: Record<Kind, TrainStep> = {
    trainPlain: makeTrainStep(plain, batch),
    trainRefconv: makeTrainStep(ref, batch),
    inferPlain: makeInferStep(plain, batch, 0, compiled[0] && ((x) => compiled[0]!.predict(x))),
    inferFused: makeInferStep(fused, batch, 0, compiled[1] && ((x) => compiled[1]!.predict(x))),
  };
  return {
    steps,
    dispose() {
      Object.values(steps).forEach((s) => s.dispose());
      compiled.forEach((c) => c.dispose());
      [plain, ref, fused].forEach((m) => m.dispose());
    },
  };
}

/** `torch_bench.py --serve`: one process per arch/config, asked for one timed step at a time. */
class TorchSteps {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;

  constructor(python: string, arch: string, size: number, batch: number) {
    const script = path.join(here, '..', 'tools', 'torch_bench.py');
    this.child = spawn(python, [script, '--serve', '--arch', arch, '--size', String(size), '--batch', String(batch), '--threads', String(os.cpus().length)]);
    this.child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  private async reply(): Promise<Record<string, unknown>> {
    const r = await this.lines.next();
    if (r.done) throw new Error(`torch_bench.py --serve exited (code ${this.child.exitCode}) before answering`);
    const obj = JSON.parse(r.value) as Record<string, unknown>;
    if (typeof obj.error === 'string') throw new Error(`torch_bench.py: ${obj.error}`);
    return obj;
  }

  /** The greeting: PyTorch's version and thread count. */
  async hello(): Promise<{ torch: string; threads: number }> {
    return (await this.reply()) as { torch: string; threads: number };
  }

  /** Runs one step of `kind` on PyTorch's side; its wall time in seconds, timed there. */
  async time(kind: Kind): Promise<number> {
    this.child.stdin.write(JSON.stringify({ what: kind }) + '\n');
    return (await this.reply()).seconds as number;
  }

  close(): void {
    this.child.stdin.end('\n');
  }
}

async function measureRow(arch: string, config: string, rounds: number, warmup: number, python: string | null, runtime: 'graph' | 'eager'): Promise<{ row: Row; torchInfo?: string }> {
  const { size, batch } = CONFIGS[config]!;
  const cpu0 = readCpuTimes();
  const ours = await ourSteps(arch, size, batch, runtime);
  const torch = python ? new TorchSteps(python, arch, size, batch) : null;
  try {
    const hello = torch ? await torch.hello() : null;
    const times: { ours: StepTimes; torch: StepTimes } = {
      ours: { trainPlain: [], trainRefconv: [], inferPlain: [], inferFused: [] },
      torch: { trainPlain: [], trainRefconv: [], inferPlain: [], inferFused: [] },
    };
    // The first `warmup` rounds are not recorded: the first allocates and selects kernels, and
    // during the second the heap still grows (a RefConv step's page faults and system CPU fall
    // ~10x only from the third on, `bench:profile`'s comment).
    for (let round = 1 - warmup; round <= rounds; round++) {
      for (const kind of KINDS) {
        const t = timeOnce(() => ours.steps[kind].run());
        const tt = torch ? await torch.time(kind) : NaN;
        if (round > 0) {
          times.ours[kind].push(t);
          if (torch) times.torch[kind].push(tt);
        }
      }
      if (round > 0) process.stdout.write(` ${round}`);
    }
    const rates = (s: StepTimes) => Object.fromEntries(KINDS.map((k) => [k, batch / median(s[k])])) as Rates;
    const row: Row = {
      arch, config, size, batch,
      ours: rates(times.ours),
      seconds: { ours: times.ours },
      steal: stealShare(cpu0, readCpuTimes()),
    };
    if (torch) {
      row.torch = rates(times.torch);
      row.seconds.torch = times.torch;
    }
    return { row, torchInfo: hello ? `PyTorch ${hello.torch} CPU, ${hello.threads} threads, channels_last` : undefined };
  } finally {
    torch?.close();
    ours.dispose();
  }
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

const f1 = (v: number) => v.toFixed(1).padStart(7);
const ratio = (a: number, b?: number) => (b ? (a / b).toFixed(2).padStart(6) : '     -');
const pct = (v: number | null) => (v === null ? 'n/a' : `${(100 * v).toFixed(1)}%`);

function printTable(rows: Row[], rounds: number): void {
  console.log(`\nimages/s (ours / PyTorch = ratio), batch / median of ${rounds} interleaved steps`);
  console.log('arch                 config        | train plain            | train RefConv          | RefConv/plain ours torch | infer plain            | infer fused            | steal');
  for (const r of rows) {
    const t = r.torch;
    const cell = (k: Kind) => `${f1(r.ours[k])} /${t ? f1(t[k]) : '      -'} =${ratio(r.ours[k], t?.[k])}`;
    const overhead = `${(r.ours.trainPlain / r.ours.trainRefconv).toFixed(2)}x ${t ? (t.trainPlain / t.trainRefconv).toFixed(2) + 'x' : '-'}`;
    console.log(`${r.arch.padEnd(20)} ${`${r.config}(${r.size})`.padEnd(13)} | ${cell('trainPlain')} | ${cell('trainRefconv')} | ${overhead.padEnd(24)} | ${cell('inferPlain')} | ${cell('inferFused')} | ${pct(r.steal)}`);
  }
  console.log('(RefConv/plain = training step time of RefConv over plain; target <= 1.05. steal = CPU time the hypervisor gave to other VMs during the row)');
}

async function main(): Promise<void> {
  const argv = await yargs(hideBin(process.argv))
    .scriptName('bench:train')
    .option('archs', { type: 'string', default: 'resnet18,mobilenet_v2,mobilenet_v3_large' })
    .option('configs', { type: 'string', default: 'imagenet,small' })
    .option('steps', { type: 'number', default: 5, describe: 'timed rounds per arch/config (each: one step of every workload, ours then PyTorch), after the warm-up rounds' })
    .option('warmup', { type: 'number', default: 2, describe: 'untimed rounds first (both sides)' })
    .option('torch', { type: 'boolean', default: true, describe: 'also run PyTorch (--no-torch to skip)' })
    .option('json', { type: 'string', describe: 'write the results (rates and every step time) as one JSON object to this file' })
    .option('leak-steps', { type: 'number', default: 1000, describe: 'RefConv training steps of a small model over which tf.memory() must stay constant (0 to skip)' })
    .option('infer-runtime', { type: 'string', choices: ['graph', 'eager'], default: 'graph', describe: "our inference: compileForInference (graph, what the evaluators use) or model.predict op by op (eager)" })
    .option('backend', { type: 'string' })
    .strict()
    .parseAsync();
  if (!(Number.isInteger(argv.steps) && argv.steps >= 1)) throw new Error(`--steps must be a positive integer, got ${argv.steps}`);
  const configs = argv.configs.split(',');
  for (const c of configs) if (!CONFIGS[c]) throw new Error(`unknown config '${c}' (${Object.keys(CONFIGS).join(', ')})`);
  const info = await initBackend(argv.backend as never);
  console.log(`ours:    ${describeBackend(info)}; TensorFlow intra-op threads: ${process.env.TF_NUM_INTRAOP_THREADS ?? `TF default (${os.cpus().length} cores)`}; inference: ${argv.inferRuntime === 'graph' ? 'compileForInference (TensorFlow graph runtime)' : 'model.predict (eager)'}`);
  const python = argv.torch ? torchPython() : null;
  let torchInfo = '';
  const rows: Row[] = [];
  for (const config of configs) {
    for (const arch of argv.archs.split(',')) {
      const c = CONFIGS[config]!;
      process.stdout.write(`measuring ${arch} ${config} (${c.size}px, batch ${c.batch}), rounds:`);
      const r = await measureRow(arch, config, argv.steps, Math.max(1, argv.warmup), python, argv.inferRuntime as 'graph' | 'eager');
      rows.push(r.row);
      if (r.torchInfo) torchInfo = r.torchInfo;
      console.log(' done');
    }
  }
  // the Python side inherits this process's environment, GLIBC_TUNABLES (huge pages) included
  if (torchInfo) console.log(`PyTorch: ${torchInfo}; GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES ?? '(unset)'} on both sides`);
  let leak: { steps: number; before: number; after: number } | undefined;
  if (argv.leakSteps > 0) {
    leak = leakCheck(argv.leakSteps);
    console.log(`tensor leak check: ${leak.steps} RefConv training steps of cifar_resnet20 (32 px, batch 8): tf.memory().numTensors ${leak.before} -> ${leak.after}${leak.before === leak.after ? ' (stable)' : ' (LEAK)'}`);
  }
  printTable(rows, argv.steps);
  if (argv.json) {
    fs.writeFileSync(argv.json, JSON.stringify({ ours: describeBackend(info), torch: torchInfo, steps: argv.steps, rows, leak }, null, 2));
    console.log(`wrote ${argv.json}`);
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
