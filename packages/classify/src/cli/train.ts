/**
 * `nx run classify:train` (one seed by default) and `nx run classify:experiment` (3 seeds):
 * the whole RefConv protocol, then the report. Run with `--help` for every option.
 */
import * as path from 'node:path';
import { describeBackend, initBackend, type BackendName } from '@refconv/core';
import { applyDeprecatedAliases, createCli, defaultRunDir } from '@refconv/engine';
import { BatchLoader, type BadImage } from '../data/loader.js';
import { prepareData, runSeed, type SeedResult } from '../protocol.js';
import { writeReport } from '../report.js';
import { DEPRECATED_ALIASES, protocolOptions, toRunConfig } from './args.js';

/** Runs the protocol CLI; `defaultSeeds` is 1 for `train` and 3 for `experiment`. */
export async function main(argv: string[], scriptName: string, defaultSeeds: number): Promise<void> {
  argv = applyDeprecatedAliases(argv, DEPRECATED_ALIASES, scriptName);
  const args = await protocolOptions(createCli(argv, scriptName), defaultSeeds, defaultRunDir('classify', defaultSeeds === 1 ? 'train' : 'experiment')).parseAsync();
  const cfg = toRunConfig(args);
  const info = await initBackend(args.backend as BackendName);
  console.log(describeBackend(info));
  const badWhileCaching: BadImage[] = [];
  const p = await prepareData(cfg, badWhileCaching);
  const dataDescription = `${p.data.name} (${p.data.root}): ${p.train.size} train / ${p.val.size} val images, ${p.data.classNames.length} classes`;
  console.log(dataDescription);
  const loader = new BatchLoader({ batchSize: cfg.pretrain.batchSize, workers: cfg.workers, prefetch: cfg.prefetch, skipBad: cfg.skipBadImages });
  loader.badImages.push(...badWhileCaching);
  const results: SeedResult[] = [];
  const command = `nx run classify:${defaultSeeds === 1 ? 'train' : 'experiment'}${argv.length ? ' -- ' + argv.join(' ') : ''}`;
  let report = '';
  try {
    for (const seed of cfg.seeds) {
      results.push(await runSeed(cfg, seed, p, loader));
      // rewritten after every seed, so an interrupted experiment still leaves a report of what finished
      report = await writeReport(cfg, results, command, dataDescription, p.data.classNames.length);
    }
  } finally {
    await loader.close();
  }
  console.log(`report: ${path.resolve(report)}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2), 'classify:train', 1).catch((e: Error) => {
    console.error(`classify:train failed: ${e.message}`);
    process.exit(1);
  });
}
