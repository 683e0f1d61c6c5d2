/**
 * `nx run segment:train [-- options]`: trains a DeepLabV3/V3+ segmenter. With no options it
 * trains a small DeepLabV3 (ResNet-18 at width 0.25, output stride 16) on CamVid at half
 * resolution, a CPU-sized run. `--refconv --init <baseline checkpoint>` refocuses a trained
 * segmenter's backbone and fine-tunes it; `--fuse-check` then shows the fused model equals a plain one.
 */
import { join } from 'node:path';
import { describeBackend, initBackend, type BackendName } from '@refconv/core';
import { createCli } from '@refconv/engine';
import type { DatasetFormat } from '../data/datasets.js';
import { DATASETS } from '../data/datasets.js';
import { train } from '../train.js';
import { fuseCheck, formatFuseReport } from '../fuse-check.js';
import { DEFAULT_CAMVID, DEFAULT_RUNS, parseSize } from './common.js';

async function main(): Promise<void> {
  const argv = await createCli(process.argv.slice(2), 'segment:train')
    .usage('$0 [options]\n\nTrains a DeepLabV3/V3+ segmenter (defaults: small DeepLabV3 on CamVid, CPU-sized).')
    .option('data', { type: 'string', default: DEFAULT_CAMVID, describe: 'dataset root' })
    .option('format', { choices: ['voc', 'cityscapes', 'camvid'] as const, default: 'camvid' as const, describe: 'dataset layout' })
    .option('train-split', { type: 'string', default: 'train' })
    .option('val-split', { type: 'string', default: 'val' })
    .option('arch', { choices: ['deeplabv3', 'deeplabv3plus'] as const, default: 'deeplabv3' as const })
    .option('backbone', { type: 'string', default: 'resnet18', describe: '@refconv/backbones architecture' })
    .option('backbone-width', { type: 'number', default: 0.25, describe: 'backbone width multiplier (1 = torchvision)' })
    .option('output-stride', { choices: [8, 16] as const, default: 16 as const })
    .option('channels', { type: 'number', default: 64, describe: 'ASPP/decoder width (paper: 256)' })
    .option('aux', { type: 'boolean', default: false, describe: 'auxiliary FCN head on C4 (loss weight --aux-weight)' })
    .option('aux-weight', { type: 'number', default: 0.5 })
    .option('dropout', { type: 'number', default: 0.1, describe: 'dropout after the ASPP projection (torchvision: 0.5)' })
    .option('crop', { type: 'string', default: '160x160', describe: 'training crop HxW (after --scale)' })
    .option('scale', { type: 'number', default: 0.5, describe: 'resize factor before augmentation and at evaluation' })
    .option('epochs', { type: 'number', default: 10 })
    .option('batch-size', { type: 'number', default: 8 })
    .option('lr', { type: 'number', default: 0.05 })
    .option('momentum', { type: 'number', default: 0.9 })
    .option('weight-decay', { type: 'number', default: 1e-4 })
    .option('warmup-epochs', { type: 'number', default: 1 })
    .option('eval-every', { type: 'number', default: 5, describe: 'evaluate on the val split every N epochs (and at the end)' })
    .option('out', { type: 'string', describe: 'run folder (default runs/<format>-<arch>[-refconv|-finetune])' })
    .option('resume', { type: 'boolean', default: false, describe: 'continue from <out>/last.safetensors' })
    .option('seed', { type: 'number', default: 0 })
    .option('init', { type: 'string', describe: 'initialise from a trained plain checkpoint' })
    .option('refconv', { type: 'boolean', default: false, describe: 'refocus the backbone (requires --init) and train' })
    .option('map-k', { choices: [1, 3, 5] as const, default: 3 as const })
    .option('refconv-aspp', { type: 'boolean', default: false, describe: 'also refocus the ASPP 3x3 convs' })
    .option('refconv-init', { choices: ['default', 'zero'] as const, default: 'default' as const, describe: "transform init: 'default' (Kaiming-uniform, official) or 'zero' (starts exactly at the trained model)" })
    .option('limit-train', { type: 'number', describe: 'use only the first N training images' })
    .option('limit-val', { type: 'number', describe: 'use only the first N validation images' })
    .option('backend', { choices: ['auto', 'tensorflow', 'cpu', 'wasm'] as const, default: 'auto' as const })
    .check((a) => {
      if (a.refconv && !a.init) throw new Error('--refconv refocuses a trained segmenter: give its checkpoint with --init (train one first with `nx run segment:train`)');
      if (!(a.epochs >= 1)) throw new Error(`--epochs must be >= 1, got ${a.epochs}`);
      if (!(a['batch-size'] >= 1)) throw new Error(`--batch-size must be >= 1, got ${a['batch-size']}`);
      return true;
    })
    .parseAsync();

  console.log(describeBackend(await initBackend(argv.backend as BackendName)));
  const format = argv.format as DatasetFormat;
  const outDir = argv.out ?? join(DEFAULT_RUNS, `${format}-${argv.arch}${argv.refconv ? '-refconv' : argv.init ? '-finetune' : ''}`);
  const result = await train({
    data: argv.data,
    format,
    trainSplit: argv['train-split'],
    valSplit: argv['val-split'],
    spec: {
      arch: argv.arch,
      backbone: argv.backbone,
      backboneWidth: argv['backbone-width'],
      outputStride: argv['output-stride'],
      numClasses: DATASETS[format].classNames.length,
      channels: argv.channels,
      lowLevelChannels: 48,
      dropout: argv.dropout,
      aux: argv.aux,
    },
    cropSize: parseSize(argv.crop, 'crop'),
    baseScale: argv.scale,
    scaleRange: [0.5, 2.0],
    epochs: argv.epochs,
    batchSize: argv['batch-size'],
    lr: argv.lr,
    momentum: argv.momentum,
    weightDecay: argv['weight-decay'],
    warmupEpochs: argv['warmup-epochs'],
    auxWeight: argv['aux-weight'],
    outDir,
    resume: argv.resume,
    seed: argv.seed,
    evalEvery: argv['eval-every'],
    limitTrain: argv['limit-train'],
    limitVal: argv['limit-val'],
    init: argv.init,
    refconv: argv.refconv ? { mapK: argv['map-k'], aspp: argv['refconv-aspp'], init: argv['refconv-init'] } : undefined,
  });
  console.log(`done: val mIoU ${(100 * result.metrics.mIoU).toFixed(2)} (best ${(100 * result.bestMIoU).toFixed(2)}), checkpoint ${result.checkpoint}`);
  if (argv.refconv) {
    const report = await fuseCheck(result.checkpoint, { inputSize: parseSize(argv.crop, 'crop') });
    console.log(formatFuseReport(report));
    if (!report.identical) process.exitCode = 1;
  }
}

main().catch((e: Error) => {
  console.error(`segment:train: ${e.message}`);
  process.exit(1);
});
