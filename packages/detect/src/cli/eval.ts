/**
 * `nx run detect:eval -- --checkpoint C --data D [--split S] [--json] [--visualize N]`:
 * runs a trained detector over a dataset, writes the detections in the COCO results format and
 * prints the 12 COCO bbox metrics (pycocotools' table, or one JSON object with `--json`).
 */
import * as path from 'node:path';
import { describeBackend, initBackend, type BackendName } from '@refconv/core';
import { createCli, resolvePaths } from '@refconv/engine';
import { openDataset } from '../data/open.js';
import { loadDetector } from '../pipeline/checkpoint.js';
import { evaluateDetector } from '../pipeline/evaluate.js';
import { DEFAULT_DATA, reportWarnings, statsObject, writeEvaluationOutputs } from './common.js';

async function main(): Promise<void> {
  const args = await createCli(process.argv.slice(2), 'detect:eval')
    .usage('$0 --checkpoint C [--data D] [--split test] [--json] [--visualize N]')
    .option('checkpoint', { type: 'string', demandOption: true, describe: 'detector checkpoint (final.safetensors of a train run)' })
    .option('data', { type: 'string', default: DEFAULT_DATA, describe: 'VOC root or COCO root/JSON' })
    .option('split', { type: 'string', default: 'test' })
    .option('images', { type: 'string', describe: 'COCO image folder when --data is a JSON file' })
    .option('drop-unknown-classes', { type: 'boolean', default: false, describe: "drop (and count) objects of classes outside the checkpoint's list instead of failing" })
    .option('out', { type: 'string', describe: 'output folder (default: the checkpoint folder)' })
    .option('json', { type: 'boolean', default: false, describe: 'print the stats as one JSON object on stdout' })
    .option('visualize', { type: 'number', default: 0, describe: 'write N images with drawn detections (PNG)' })
    .option('batch-size', { type: 'number', default: 2 })
    .option('max-images', { type: 'number', describe: 'evaluate only the first N images' })
    .option('score-threshold', { type: 'number', describe: 'override the checkpoint score threshold' })
    .option('backend', { choices: ['auto', 'tensorflow', 'cpu', 'wasm'] as const, default: 'auto' as BackendName })
    .middleware(resolvePaths(['checkpoint', 'data', 'images', 'out']))
    .parseAsync();

  const info = describeBackend(await initBackend(args.backend));
  if (!args.json) console.log(info);
  const overrides = args.scoreThreshold === undefined ? {} : { scoreThreshold: args.scoreThreshold, boxScoreThreshold: args.scoreThreshold };
  const loaded = loadDetector(args.checkpoint, overrides);
  const det = loaded.det;
  const ds = openDataset(args.data, { split: args.split, images: args.images, categories: loaded.desc.categories, dropUnknownClasses: args.dropUnknownClasses });
  reportWarnings(ds);
  if (args.maxImages) ds.records = ds.records.slice(0, args.maxImages);
  const ev = await evaluateDetector(det, ds, loaded.desc.resize, { batchSize: args.batchSize, progress: !args.json });
  const outDir = path.resolve(args.out ?? path.dirname(args.checkpoint));
  const prefix = `eval_${path.basename(path.resolve(args.data))}_${args.split}`;
  const outs = await writeEvaluationOutputs(outDir, prefix, ds, ev, args.visualize);
  if (args.json) {
    process.stdout.write(JSON.stringify({ checkpoint: args.checkpoint, data: ds.source, images: ds.records.length, stats: statsObject(ev.stats), results: outs.results }) + '\n');
    return;
  }
  console.log(`COCO bbox metrics on ${ds.source}, ${ds.records.length} images:`);
  for (const l of ev.summary) console.log(l);
  console.log(`results: ${outs.results}\nstats: ${outs.stats}`);
  if (outs.images.length) console.log(`images: ${path.dirname(outs.images[0]!)}/ (${outs.images.length} PNGs)`);
}

main().catch((e: unknown) => {
  process.stderr.write(`detect:eval: ${(e as Error).message}\n`);
  process.exit(1);
});
