/**
 * `nx run backbones:bench-export`: times `exportTorchWeights` for full-size ResNet-18 and
 * ResNet-50 (plain and refocused) and fails (exit code 1) when one takes longer than `--limit`
 * seconds (default 1). Timed: the whole call, i.e. reading every weight back from the backend,
 * the layout changes and writing the safetensors file.
 *
 *   npx nx run backbones:bench-export [-- --arch resnet18 --arch resnet50 --repeats 3 --limit 1]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { describeBackend, initBackend, refocus } from '@refconv/core';
import { createModel, exportTorchWeights } from '../src/index.js';

const argv = await yargs(hideBin(process.argv))
  .option('arch', { type: 'array', string: true, default: ['resnet18', 'resnet50'], describe: 'architectures to time' })
  .option('repeats', { type: 'number', default: 3, describe: 'timed calls per model (the median is compared with --limit)' })
  .option('limit', { type: 'number', default: 1, describe: 'seconds a median export may take' })
  .strict()
  .parseAsync();

await initBackend();
console.log(describeBackend());
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-export-'));
const slow: string[] = [];
try {
  for (const arch of argv.arch as string[]) {
    const plain = createModel(arch);
    const refocused = refocus(plain, { mapK: 3 });
    for (const [label, model] of [[arch, plain], [`${arch} refocused`, refocused]] as const) {
      const file = path.join(dir, 'w.safetensors');
      const times: number[] = [];
      for (let r = 0; r < argv.repeats; r++) {
        const t0 = performance.now();
        exportTorchWeights(model, file);
        times.push((performance.now() - t0) / 1000);
      }
      const median = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
      const mb = fs.statSync(file).size / 2 ** 20;
      const ok = median <= argv.limit;
      if (!ok) slow.push(`${label}: ${median.toFixed(3)} s`);
      console.log(
        `${label.padEnd(22)} exportTorchWeights ${median.toFixed(3)} s median (${times.map((t) => t.toFixed(3)).join(', ')}), ${mb.toFixed(1)} MB  ${ok ? 'ok' : `SLOWER than ${argv.limit} s`}`,
      );
    }
    refocused.dispose();
    plain.dispose();
  }
  console.log(`tensors alive at the end: ${tf.memory().numTensors}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
if (slow.length) {
  console.error(`bench-export: over the ${argv.limit} s limit: ${slow.join('; ')}`);
  process.exitCode = 1;
}
