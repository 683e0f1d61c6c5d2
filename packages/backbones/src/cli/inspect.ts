/**
 * `nx run backbones:inspect -- --arch resnet50 [--input-size 224]`: layer table, parameter count
 * (PyTorch convention: BN running statistics are buffers, not parameters) and multiply-accumulates
 * of conv / linear layers (torchvision's "GFLOPS") at the given input size.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { describeBackend, initBackend } from '@refconv/core';
import { createModel, listModels } from '../index.js';
import { type LayerRow, layerTable, tableTotals } from '../layer-table.js';

function formatTable(rows: LayerRow[]): string {
  const header = ['layer', 'type', 'output', 'params', 'MACs'];
  const cells = rows.map((r) => [r.name, r.className, r.outputShape, r.params.toLocaleString('en-US'), r.macs.toLocaleString('en-US')]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i >= 3 ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

async function main(): Promise<void> {
  const argv = await yargs(hideBin(process.argv))
    .scriptName('backbones:inspect')
    .strict()
    .option('arch', { type: 'string', demandOption: true, choices: listModels(), describe: 'architecture' })
    .option('input-size', { type: 'number', describe: 'input height = width in pixels (default: the architecture\'s)' })
    .option('num-classes', { type: 'number', describe: 'classifier outputs (default: the architecture\'s)' })
    .option('in-channels', { type: 'number', default: 3 })
    .option('width', { type: 'number', default: 1, describe: 'width multiplier' })
    .option('output-stride', { type: 'number', choices: [8, 16, 32], default: 32 })
    .option('features', { type: 'boolean', default: false, describe: 'C2..C5 feature model instead of the classifier' })
    .option('table', { type: 'boolean', default: true, describe: 'print the layer table (--no-table for totals only)' })
    .option('backend', { type: 'string', choices: ['auto', 'tensorflow', 'cpu', 'wasm'], default: 'auto' })
    .help()
    .parseAsync();

  await initBackend(argv.backend as 'auto');
  console.log(describeBackend());
  const model = createModel(argv.arch, {
    inputSize: argv['input-size'],
    numClasses: argv['num-classes'],
    inChannels: argv['in-channels'],
    width: argv.width,
    outputStride: argv['output-stride'] as 8 | 16 | 32,
    features: argv.features,
  });
  const rows = layerTable(model);
  if (argv.table) console.log(formatTable(rows));
  const { params, macs } = tableTotals(rows);
  const [, h, w, c] = model.inputs[0]!.shape;
  console.log(`\n${argv.arch}: input ${h}x${w}x${c}, ${model.layers.length} layers`);
  console.log(`params: ${params.toLocaleString('en-US')} (${(params / 1e6).toFixed(2)}M)`);
  console.log(`MACs:   ${macs.toLocaleString('en-US')} (${(macs / 1e9).toFixed(3)}G)`);
  model.dispose();
}

main().catch((e: unknown) => {
  console.error(`backbones:inspect: ${(e as Error).message}`);
  process.exit(1);
});
