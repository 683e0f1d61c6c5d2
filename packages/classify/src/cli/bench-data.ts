/**
 * `nx run classify:bench-data`: images/s of the input pipeline alone (decode + augment +
 * batch, no model), for 0 workers (main thread) and the requested worker counts, measured
 * in this process one after another.
 */
import { createCli, deriveSeed, resolvePaths } from '@refconv/engine';
import { isDataKeyword } from './args.js';
import { BatchLoader } from '../data/loader.js';
import { prepareData } from '../protocol.js';
import { defaultConfig } from '../config.js';

async function main(argv: string[]): Promise<void> {
  const d = defaultConfig();
  const a = await createCli(argv, 'classify:bench-data')
    .option('data', { type: 'string', default: 'fashion-mnist' })
    .middleware(resolvePaths(['data'], isDataKeyword))
    .option('input-size', { type: 'number', default: d.inputSize })
    .option('images', { type: 'number', default: 4096, describe: 'images per measurement' })
    .option('batch-size', { type: 'number', default: 64 })
    .option('workers', { type: 'number', array: true, default: [0, 1, 2], describe: 'worker counts to compare' })
    .option('prefetch', { type: 'number', default: 3 })
    .option('split', { choices: ['train', 'val'] as const, default: 'train' as const, describe: 'train = RandomResizedCrop+flip, val = Resize+CenterCrop' })
    .parseAsync();
  const p = await prepareData({ ...d, data: a.data, inputSize: a.inputSize, trainLimit: undefined });
  const split = a.split === 'train' ? p.train : p.val;
  const spec = a.split === 'train' ? p.trainTransform : p.evalTransform;
  const n = Math.min(a.images, split.size);
  console.log(`${p.data.name}: ${n} ${a.split} images -> ${spec.kind === 'train' ? spec.size : spec.crop}px, batch ${a.batchSize}, prefetch ${a.prefetch}`);
  const order = Array.from({ length: n }, (_, i) => i);
  let reference: number | undefined;
  for (const workers of a.workers) {
    const loader = new BatchLoader({ batchSize: a.batchSize, workers, prefetch: a.prefetch });
    try {
      // one warm-up batch (worker start-up, module loading) is not timed
      for await (const _ of loader.batches(split, order.slice(0, a.batchSize), spec, (i) => deriveSeed(0, i))) void _;
      const t0 = performance.now();
      let count = 0;
      for await (const b of loader.batches(split, order, spec, (i) => deriveSeed(1, i))) count += b.n;
      const rate = count / ((performance.now() - t0) / 1000);
      reference ??= rate;
      console.log(`workers=${workers}: ${rate.toFixed(0)} images/s (${(rate / reference).toFixed(2)}x workers=${a.workers[0]})`);
    } finally {
      await loader.close();
    }
  }
}

main(process.argv.slice(2)).catch((e: Error) => {
  console.error(`classify:bench-data failed: ${e.message}`);
  process.exit(1);
});
