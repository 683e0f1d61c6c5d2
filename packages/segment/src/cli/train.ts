/**
 * `nx run segment:train [-- options]`: trains a DeepLabV3/V3+ segmenter. With no options it
 * trains a small DeepLabV3 (ResNet-18 at width 0.25, output stride 16) on CamVid at half
 * resolution, a CPU-sized run. `--refconv --from <baseline checkpoint>` refocuses a trained
 * segmenter's backbone and fine-tunes it; `--fuse-check` then shows the fused model equals a plain one.
 */
import { join } from 'node:path';
import { describeBackend, initBackend, type BackendName } from '@refconv/core';
import { applyDeprecatedAliases, cliCommand, createCli, launcherOptions, launchSingleRun, PreemptedError, PREEMPTED_EXIT_CODE, resolvePaths, trainingOptions } from '@refconv/engine';
import type { DatasetFormat } from '../data/datasets.js';
import { DATASETS } from '../data/datasets.js';
import { formatFuseReport } from '../fuse-check.js';
import { defaultRunName, runSegmentation } from '../protocol.js';
import { DEFAULT_CAMVID, DEFAULT_RUNS, PACKAGE_ROOT, parseSize } from './common.js';

/** Old segment spellings, kept for one version (a warning names the new flag). */
export const DEPRECATED_ALIASES: Record<string, string> = { 'limit-train': 'train-limit', 'limit-val': 'val-limit', init: 'from' };

async function main(): Promise<void> {
  const rawArgv = applyDeprecatedAliases(process.argv.slice(2), DEPRECATED_ALIASES, 'segment:train');
  const argv = await launcherOptions(trainingOptions(createCli(rawArgv, 'segment:train'), {
    epochs: 10, batchSize: 8, lr: 0.05, momentum: 0.9, weightDecay: 1e-4, warmupEpochs: 1, warmupStartFactor: 0.01, seed: 0,
    mapK: 3, grouping: 'official', refconvInit: 'default', frozen: 'official',
  }), 'the run')
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
    .option('eval-every', { type: 'number', default: 5, describe: 'evaluate on the val split every N epochs (and at the end)' })
    .option('refconv-aspp', { type: 'boolean', default: false, describe: 'with --refconv: also refocus the ASPP 3x3 convs' })
    .option('backend', { choices: ['auto', 'tensorflow', 'cpu', 'wasm'] as const, default: 'auto' as const })
    // relative paths are relative to where the user ran the command (nx runs it in packages/segment)
    .middleware(resolvePaths(['data', 'out', 'from']))
    .check((a) => (a.refconv && !a.from ? '--refconv refocuses a trained segmenter: give its checkpoint with --from (train one first with `nx run segment:train`)' : true))
    .parseAsync();

  const format = argv.format as DatasetFormat;
  const spec = {
    arch: argv.arch,
    backbone: argv.backbone,
    backboneWidth: argv['backbone-width'],
    outputStride: argv['output-stride'],
    numClasses: DATASETS[format].classNames.length,
    channels: argv.channels,
    lowLevelChannels: 48,
    dropout: argv.dropout,
    aux: argv.aux,
  };
  const refconv = argv.refconv ? { mapK: argv['map-k'], aspp: argv['refconv-aspp'], init: argv['refconv-init'], grouping: argv.grouping, frozen: argv.frozen } : undefined;
  const outDir = argv.out ?? join(DEFAULT_RUNS, defaultRunName({ format, spec, refconv, from: argv.from }));
  // --launcher slurm: the same command as one Slurm job writing the same outDir (engine's slurm.ts); --status OUT: its state
  if (launchSingleRun(argv, { target: 'segment:train', command: cliCommand(PACKAGE_ROOT, join('src', 'cli', 'train.ts')), userArgv: rawArgv, out: () => outDir })) return;
  console.log(describeBackend(await initBackend(argv.backend as BackendName)));
  const result = await runSegmentation({
    data: argv.data,
    format,
    trainSplit: argv['train-split'],
    valSplit: argv['val-split'],
    spec,
    cropSize: parseSize(argv.crop, 'crop'),
    baseScale: argv.scale,
    scaleRange: [0.5, 2.0],
    epochs: argv.epochs,
    batchSize: argv['batch-size'],
    lr: argv.lr,
    momentum: argv.momentum,
    weightDecay: argv['weight-decay'],
    warmupEpochs: argv['warmup-epochs'] ?? 1,
    warmupSteps: argv['warmup-steps'],
    warmupStartFactor: argv['warmup-start-factor'],
    auxWeight: argv['aux-weight'],
    outDir,
    resume: argv.resume,
    acceptChangedOptions: argv['accept-changed-options'],
    seed: argv.seed,
    evalEvery: argv['eval-every'],
    trainLimit: argv['train-limit'],
    valLimit: argv['val-limit'],
    from: argv.from,
    refconv,
  });
  console.log(`done: val mIoU ${(100 * result.metrics.mIoU).toFixed(2)} (best ${(100 * result.bestMIoU).toFixed(2)}), checkpoint ${result.checkpoint}`);
  if (result.fuse) {
    console.log(formatFuseReport(result.fuse));
    if (!result.fuse.identical) process.exitCode = 1;
  }
}

main().catch((e: Error) => {
  console.error(`segment:train: ${e.message}`);
  // preempted (SIGTERM / SIGUSR1 after the current step, checkpoint written): exit 75 asks a Slurm
  // script to requeue the job, which then resumes with --resume
  process.exit(e instanceof PreemptedError ? PREEMPTED_EXIT_CODE : 1);
});
