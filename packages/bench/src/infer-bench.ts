/**
 * `nx run bench:infer`: inference speed of a deployed network, in every runtime a user could pick,
 * side by side with PyTorch on the same machine in one run.
 *
 * For each architecture (torchvision's, 1000 classes, random weights: speed does not depend on
 * them) and input size, batch-1 latency and batch-N throughput of:
 *
 * - `tfjs eager`: `model.predict` of the plain model, op by op (what tfjs users get by default);
 * - `tfjs graph`: `compileForInference(model, { batchOneVariant: true })` from @refconv/core (fused,
 *   BN folded, TensorFlow's graph runtime; at batch N the graph the project's evaluators and
 *   `deploy:predict --checkpoint` use, at batch 1 the faster of it and its 1x1-as-MatMul variant);
 * - `tfjs graph RefConv`: the same for the refocused model (fused first: no inference cost);
 * - `ORT ours`: onnxruntime-node on `exportOnnx(fuse(model, { foldBatchNorm: true }))` (@refconv/deploy);
 * - `torch eager`: PyTorch eager, channels_last, inference_mode (tools/torch_infer.py);
 * - `ORT torch`: onnxruntime (Python) on PyTorch's own `torch.onnx.export` of the same model;
 * - `ORT-node torch`: onnxruntime-node on that same export file: against `ORT ours` it isolates
 *   our graph (same runtime, same binding), against `ORT torch` the Node binding's overhead.
 *
 * Every round times each workload once at batch N and `--latency-runs` times at batch 1, ours and
 * PyTorch's interleaved, so slow phases of a shared machine hit every column alike. Throughput is
 * N / median batch time; latency is the median of every batch-1 call.
 *
 *   nx run bench:infer -- [--archs resnet18,resnet50,mobilenet_v2,mobilenet_v3_large] [--sizes 224,64]
 *                         [--batch 32] [--rounds 5] [--latency-runs 5] [--ort-spinning 0|1] [--no-torch] [--json out.json]
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { createModel } from '@refconv/backbones';
import { compileForInference, describeBackend, fuse, initBackend, refocus } from '@refconv/core';
import { exportOnnx } from '@refconv/deploy';
import * as tf from '@tensorflow/tfjs';
import { median, readCpuTimes, stealShare } from './measure.js';

const here = path.dirname(fileURLToPath(import.meta.url));

const OURS = ['tfjsEager', 'tfjsGraph', 'tfjsGraphRefconv', 'ortOurs', 'ortNodeTorch'] as const;
const THEIRS = ['torchEager', 'ortTorch'] as const;
type Workload = (typeof OURS)[number] | (typeof THEIRS)[number];
const LABELS: Record<Workload, string> = {
  tfjsEager: 'tfjs eager', tfjsGraph: 'tfjs graph', tfjsGraphRefconv: 'tfjs graph RefConv', ortOurs: 'ORT ours', ortNodeTorch: 'ORT-node torch', torchEager: 'torch eager', ortTorch: 'ORT torch',
};

/** One of our workloads: runs one batch of the given size (output read back to JS). */
type Runner = (batch: number) => Promise<void>;

interface Row {
  arch: string;
  size: number;
  batch: number;
  /** images/s at `batch`, and batch-1 latency in ms, per workload. */
  throughput: Partial<Record<Workload, number>>;
  latencyMs: Partial<Record<Workload, number>>;
  seconds: Partial<Record<Workload, { batch: number[]; single: number[] }>>;
  steal: number | null;
  /** compileForInference's verification on this host. */
  verification: string[];
}

async function ourRunners(arch: string, size: number, ortOptions: ort.InferenceSession.SessionOptions, torchOnnx: string | undefined): Promise<{ runners: Partial<Record<(typeof OURS)[number], Runner>>; verification: string[]; dispose(): void }> {
  const plain = createModel(arch, { inputSize: size, numClasses: 1000 });
  const ref = refocus(plain, { seed: 1 });
  // with the batch-1 variant: the batch-N column runs the same graph as the evaluators' default
  const graph = await compileForInference(plain, { onMismatch: 'throw', batchOneVariant: true });
  const graphRef = await compileForInference(ref, { onMismatch: 'throw', batchOneVariant: true });
  const deployable = fuse(plain, { foldBatchNorm: true });
  const session = await ort.InferenceSession.create(exportOnnx(deployable), ortOptions);
  const torchSession = torchOnnx ? await ort.InferenceSession.create(torchOnnx, ortOptions) : undefined;
  deployable.dispose();
  const inputs = new Map<number, { nhwc: tf.Tensor4D; nchw: ort.Tensor }>();
  const input = (n: number) => {
    let x = inputs.get(n);
    if (!x) {
      const nhwc = tf.randomNormal([n, size, size, 3], 0, 1, 'float32', n) as tf.Tensor4D;
      const nchw = new ort.Tensor('float32', tf.tidy(() => tf.transpose(nhwc, [0, 3, 1, 2]).dataSync() as Float32Array), [n, 3, size, size]);
      x = { nhwc, nchw };
      inputs.set(n, x);
    }
    return x;
  };
  const tfjs = (predict: (x: tf.Tensor) => tf.Tensor | tf.Tensor[]): Runner => async (n) => {
    const x = input(n).nhwc; // created outside the tidy, which would dispose it
    tf.tidy(() => {
      const y = predict(x);
      (Array.isArray(y) ? y[0]! : y).dataSync();
    });
  };
  return {
    runners: {
      tfjsEager: tfjs((x) => plain.predict(x) as tf.Tensor),
      tfjsGraph: tfjs((x) => graph.predict(x)),
      tfjsGraphRefconv: tfjs((x) => graphRef.predict(x)),
      ortOurs: async (n) => {
        const out = await session.run({ [session.inputNames[0]!]: input(n).nchw });
        for (const t of Object.values(out)) t.dispose();
      },
      ...(torchSession ? {
        ortNodeTorch: async (n: number) => {
          const out = await torchSession.run({ [torchSession.inputNames[0]!]: input(n).nchw });
          for (const t of Object.values(out)) t.dispose();
        },
      } : {}),
    },
    verification: [`plain: ${graph.verification}`, `RefConv: ${graphRef.verification}`],
    dispose() {
      for (const { nhwc } of inputs.values()) nhwc.dispose();
      graph.dispose();
      graphRef.dispose();
      void session.release();
      void torchSession?.release();
      plain.dispose();
      ref.dispose();
    },
  };
}

/** `torch_infer.py --serve`: PyTorch eager and onnxruntime on torch.onnx's export, one request at a time. */
class TorchSide {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;

  constructor(python: string, arch: string, size: number, spinning: number, onnxOut: string) {
    const script = path.join(here, '..', 'tools', 'torch_infer.py');
    this.child = spawn(python, [script, '--serve', '--arch', arch, '--size', String(size), '--threads', String(os.cpus().length), '--spinning', String(spinning), '--onnx-out', onnxOut]);
    this.child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async reply(): Promise<Record<string, unknown>> {
    const r = await this.lines.next();
    if (r.done) throw new Error(`torch_infer.py --serve exited (code ${this.child.exitCode}) before answering`);
    const obj = JSON.parse(r.value) as Record<string, unknown>;
    if (typeof obj.error === 'string') throw new Error(`torch_infer.py: ${obj.error}`);
    return obj;
  }

  async time(what: (typeof THEIRS)[number], batch: number, repeat: number): Promise<number[]> {
    this.child.stdin.write(JSON.stringify({ what, batch, repeat }) + '\n');
    return (await this.reply()).seconds as number[];
  }

  close(): void {
    this.child.stdin.end('\n');
  }
}

async function timeOurs(run: Runner, batch: number): Promise<number> {
  const t0 = performance.now();
  await run(batch);
  return (performance.now() - t0) / 1000;
}

async function measureRow(arch: string, size: number, batch: number, rounds: number, latencyRuns: number, python: string | null, ortOptions: ort.InferenceSession.SessionOptions, spinning: number): Promise<{ row: Row; info?: Record<string, unknown> }> {
  const cpu0 = readCpuTimes();
  const torchOnnx = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bench-infer-')), `${arch}-${size}.torch.onnx`);
  const torch = python ? new TorchSide(python, arch, size, spinning, torchOnnx) : null;
  const info = torch ? await torch.reply() : undefined; // after the export is written
  const ours = await ourRunners(arch, size, ortOptions, torch ? torchOnnx : undefined);
  try {
    const workloads: Workload[] = [...OURS.filter((w) => ours.runners[w]), ...(torch ? THEIRS : [])];
    const times = Object.fromEntries(workloads.map((w) => [w, { batch: [] as number[], single: [] as number[] }])) as Row['seconds'];
    for (let round = 0; round <= rounds; round++) {
      for (const w of workloads) {
        const isOurs = (OURS as readonly string[]).includes(w);
        const run = ours.runners[w as (typeof OURS)[number]]!;
        const big = isOurs ? [await timeOurs(run, batch)] : await torch!.time(w as (typeof THEIRS)[number], batch, 1);
        const single: number[] = [];
        if (isOurs) for (let i = 0; i < latencyRuns; i++) single.push(await timeOurs(run, 1));
        else single.push(...(await torch!.time(w as (typeof THEIRS)[number], 1, latencyRuns)));
        // Round 0 warms up (first-call allocation, kernel selection, graph optimisation) and is not recorded.
        if (round > 0) {
          times[w]!.batch.push(...big);
          times[w]!.single.push(...single);
        }
      }
      if (round > 0) process.stdout.write(` ${round}`);
    }
    const row: Row = {
      arch, size, batch,
      throughput: Object.fromEntries(workloads.map((w) => [w, batch / median(times[w]!.batch)])),
      latencyMs: Object.fromEntries(workloads.map((w) => [w, 1000 * median(times[w]!.single)])),
      seconds: times,
      steal: stealShare(cpu0, readCpuTimes()),
      verification: ours.verification,
    };
    return { row, info };
  } finally {
    torch?.close();
    ours.dispose();
    fs.rmSync(path.dirname(torchOnnx), { recursive: true, force: true });
  }
}

function torchPython(): string {
  return execFileSync(path.join(here, '..', 'tools', 'setup-venv.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop() as string;
}

function printTables(rows: Row[], rounds: number, latencyRuns: number, withTorch: boolean): void {
  const cols: Workload[] = [...OURS, ...THEIRS].filter((w) => rows[0]?.throughput[w] !== undefined);
  const head = cols.map((w) => LABELS[w].padStart(18)).join(' |');
  const ratios = withTorch ? ' | graph/torch | ORT ours/torch | ORT ours/ORT torch | ORT ours/ORT-node torch' : '';
  const r2 = (a?: number, b?: number) => (a && b ? (a / b).toFixed(2) : '-');
  console.log(`\nthroughput, images/s at batch ${rows[0]?.batch} (batch / median of ${rounds} interleaved batches)`);
  console.log(`${'arch'.padEnd(20)} ${'px'.padStart(4)} |${head}${ratios} | steal`);
  for (const r of rows) {
    const t = r.throughput;
    const cells = cols.map((w) => (t[w] ?? NaN).toFixed(1).padStart(18)).join(' |');
    const rat = withTorch ? ` | ${r2(t.tfjsGraph, t.torchEager).padStart(11)} | ${r2(t.ortOurs, t.torchEager).padStart(14)} | ${r2(t.ortOurs, t.ortTorch).padStart(18)} | ${r2(t.ortOurs, t.ortNodeTorch).padStart(23)}` : '';
    console.log(`${r.arch.padEnd(20)} ${String(r.size).padStart(4)} |${cells}${rat} | ${r.steal === null ? 'n/a' : `${(100 * r.steal).toFixed(1)}%`}`);
  }
  console.log(`\nbatch-1 latency, ms (median of ${rounds} x ${latencyRuns} calls; ratios are torch's latency over ours: >= 1 means we are as fast or faster)`);
  console.log(`${'arch'.padEnd(20)} ${'px'.padStart(4)} |${head}${ratios}`);
  for (const r of rows) {
    const l = r.latencyMs;
    const cells = cols.map((w) => (l[w] ?? NaN).toFixed(2).padStart(18)).join(' |');
    const rat = withTorch ? ` | ${r2(l.torchEager, l.tfjsGraph).padStart(11)} | ${r2(l.torchEager, l.ortOurs).padStart(14)} | ${r2(l.ortTorch, l.ortOurs).padStart(18)} | ${r2(l.ortNodeTorch, l.ortOurs).padStart(23)}` : '';
    console.log(`${r.arch.padEnd(20)} ${String(r.size).padStart(4)} |${cells}${rat}`);
  }
}

async function main(): Promise<void> {
  const argv = await yargs(hideBin(process.argv))
    .scriptName('bench:infer')
    .option('archs', { type: 'string', default: 'resnet18,resnet50,mobilenet_v2,mobilenet_v3_large' })
    .option('sizes', { type: 'string', default: '224,64', describe: 'input sizes (square), comma-separated' })
    .option('batch', { type: 'number', default: 32, describe: 'batch size of the throughput column' })
    .option('rounds', { type: 'number', default: 5, describe: 'timed rounds (after one warm-up round)' })
    .option('latency-runs', { type: 'number', default: 5, describe: 'batch-1 calls per workload per round' })
    .option('ort-spinning', { type: 'number', default: 0, choices: [0, 1], describe: "onnxruntime's intra-op thread spinning, both sides" })
    .option('ort-threads', { type: 'number', default: os.cpus().length, describe: "onnxruntime's intra-op threads, both sides" })
    .option('torch', { type: 'boolean', default: true, describe: 'also run PyTorch and onnxruntime on its export (--no-torch to skip)' })
    .option('json', { type: 'string', describe: 'write every measurement as JSON to this file' })
    .option('backend', { type: 'string' })
    .strict()
    .parseAsync();
  for (const [k, v] of [['--rounds', argv.rounds], ['--latency-runs', argv.latencyRuns], ['--batch', argv.batch]] as const) {
    if (!(Number.isInteger(v) && v >= 1)) throw new Error(`${k} must be a positive integer, got ${v}`);
  }
  const sizes = argv.sizes.split(',').map(Number);
  if (sizes.some((s) => !(Number.isInteger(s) && s >= 32))) throw new Error(`--sizes: integers >= 32 expected, got '${argv.sizes}'`);
  const info = await initBackend(argv.backend as never);
  console.log(`tfjs:  ${describeBackend(info)}`);
  const ortOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: argv.ortThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    extra: { session: { intra_op: { allow_spinning: String(argv.ortSpinning) } } },
  };
  console.log(`ORT ours: onnxruntime-node ${ort.env.versions.node ?? ''}, graph optimisation 'all', ${argv.ortThreads} intra-op threads, sequential, spinning ${argv.ortSpinning ? 'on' : 'off'}`);
  const python = argv.torch ? torchPython() : null;
  const rows: Row[] = [];
  let torchInfo: Record<string, unknown> | undefined;
  for (const size of sizes) {
    for (const arch of argv.archs.split(',')) {
      process.stdout.write(`measuring ${arch} ${size}px (batch ${argv.batch} and 1), rounds:`);
      const r = await measureRow(arch, size, argv.batch, argv.rounds, argv.latencyRuns, python, ortOptions, argv.ortSpinning);
      rows.push(r.row);
      torchInfo ??= r.info;
      console.log(` done (${r.row.verification.join('; ')})`);
    }
  }
  if (torchInfo) console.log(`PyTorch ${String(torchInfo.torch)} CPU, ${String(torchInfo.threads)} threads, channels_last, inference_mode; ORT torch: onnxruntime ${String(torchInfo.onnxruntime)} (Python), ${String(torchInfo.ort_options)}, on torch.onnx.export (opset 17); GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES ?? '(unset)'} on both sides`);
  printTables(rows, argv.rounds, argv.latencyRuns, Boolean(python));
  if (argv.json) {
    fs.writeFileSync(argv.json, JSON.stringify({ tfjs: describeBackend(info), torch: torchInfo, rounds: argv.rounds, latencyRuns: argv.latencyRuns, rows }, null, 2));
    console.log(`wrote ${argv.json}`);
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
