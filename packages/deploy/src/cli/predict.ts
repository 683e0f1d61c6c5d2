/**
 * `nx run deploy:predict -- --model m.onnx --images a.jpg b.jpg [--topk 5] [--json]`: top-k classes
 * of each image with onnxruntime-node, preprocessed as the model's metadata says (sharp decoding).
 * `--checkpoint C` instead of `--model` runs the classify checkpoint in tfjs (fused, BN folded) with
 * the preprocessing deploy:export would store, so both runtimes can be compared.
 */
import { describeBackend, initBackend } from '@refconv/core';
import { createCli, resolvePaths } from '@refconv/engine';
import { exportClassifierCheckpoint, predictOnnx, predictTfjs, type Prediction } from '../classifier.js';

async function main(argv: string[]): Promise<void> {
  const a = await createCli(argv, 'deploy:predict')
    .usage('$0 --model m.onnx --images a.jpg [b.jpg ...] [--topk 5] [--json]')
    .option('model', { type: 'string', describe: 'ONNX file written by deploy:export (runs in onnxruntime-node)' })
    .option('checkpoint', { type: 'string', describe: 'a classify checkpoint instead (runs in tfjs)' })
    .check((v) => (!v.model === !v.checkpoint ? 'pass exactly one of --model or --checkpoint' : true))
    .option('images', { type: 'string', array: true, demandOption: true, describe: 'image files (any format sharp reads)' })
    .option('topk', { type: 'number', default: 5 })
    .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads (default: its choice)' })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON object on stdout' })
    .middleware(resolvePaths(['model', 'checkpoint', 'images']))
    .parseAsync();
  const t0 = performance.now();
  let preds: Prediction[];
  if (a.model) {
    preds = await predictOnnx(a.model, a.images, { topk: a.topk, intraOpThreads: a.threads });
  } else {
    const info = await initBackend();
    if (!a.json) console.log(describeBackend(info));
    const ex = exportClassifierCheckpoint(a.checkpoint!);
    preds = await predictTfjs(ex.model, ex.metadata, a.images, a.topk);
    ex.model.dispose();
  }
  const ms = performance.now() - t0;
  if (a.json) {
    process.stdout.write(JSON.stringify({ model: a.model ?? a.checkpoint, runtime: a.model ? 'onnxruntime-node' : 'tfjs', predictions: preds, totalMs: ms }) + '\n');
    return;
  }
  for (const p of preds) {
    console.log(p.image);
    for (const t of p.top) console.log(`  ${(100 * t.probability).toFixed(2).padStart(6)}%  ${t.index.toString().padStart(4)}  ${t.name}`);
  }
  console.log(`(${preds.length} image(s), ${ms.toFixed(0)} ms including model load)`);
}

main(process.argv.slice(2)).catch((e: Error) => {
  console.error(`deploy:predict failed: ${e.message}`);
  process.exit(1);
});
