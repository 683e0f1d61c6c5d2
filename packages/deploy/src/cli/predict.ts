/**
 * `nx run deploy:predict -- --model m.onnx --images a.jpg b.jpg [--topk 5] [--json]`: top-k classes
 * of each image with onnxruntime-node, preprocessed as the model's metadata says (sharp decoding).
 */
import { createCli, resolvePaths } from '@refconv/engine';
import { predictOnnx } from '../classifier.js';

async function main(argv: string[]): Promise<void> {
  const a = await createCli(argv, 'deploy:predict')
    .usage('$0 --model m.onnx --images a.jpg [b.jpg ...] [--topk 5] [--json]')
    .option('model', { type: 'string', demandOption: true, describe: 'ONNX file written by deploy:export' })
    .option('images', { type: 'string', array: true, demandOption: true, describe: 'image files (any format sharp reads)' })
    .option('topk', { type: 'number', default: 5 })
    .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads (default: its choice)' })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON object on stdout' })
    .middleware(resolvePaths(['model', 'images']))
    .parseAsync();
  const t0 = performance.now();
  const preds = await predictOnnx(a.model, a.images, { topk: a.topk, intraOpThreads: a.threads });
  const ms = performance.now() - t0;
  if (a.json) {
    process.stdout.write(JSON.stringify({ model: a.model, runtime: 'onnxruntime-node', predictions: preds, totalMs: ms }) + '\n');
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
