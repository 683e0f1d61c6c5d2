/**
 * `nx run segment:eval -- --checkpoint C --data D --format voc|cityscapes|camvid [--json]`:
 * split-level confusion matrix, per-class IoU, mIoU, pixel and mean class accuracy.
 * Whole-image or sliding-window inference, optional multi-scale + flip, colourised
 * predictions with `--save-dir`. With no options it evaluates the newest checkpoint under
 * `runs/` on the dataset it was trained on (or says how to make one).
 */
import { relative } from 'node:path';
import { describeBackend, initBackend, type BackendName } from '@refconv/core';
import { createCli, loadCheckpoint, resolvePaths, setModelWeights } from '@refconv/engine';
import { DATASETS, listSamples, type DatasetFormat } from '../data/datasets.js';
import { evaluateSplit } from '../evaluate.js';
import { formatMetricsTable, metricsToJson } from '../metrics.js';
import { SizedModels, type SegmenterSpec } from '../model/segmenter.js';
import { buildFromSpec, deployWeights } from '../model/segmenter-refconv.js';
import { DEFAULT_CAMVID, DEFAULT_RUNS, REPO_ROOT, newestCheckpoint, parseSize } from './common.js';

async function main(): Promise<void> {
  const argv = await createCli(process.argv.slice(2), 'segment:eval')
    .usage('$0 [--checkpoint C] [--data D] [--format voc|cityscapes|camvid] [options]\n\nEvaluates a segmentation checkpoint (mIoU over a whole split).')
    .option('checkpoint', { type: 'string', describe: 'checkpoint (default: newest under runs/)' })
    .option('data', { type: 'string', describe: 'dataset root (default: the CamVid copy beside the project for camvid checkpoints)' })
    .option('format', { choices: ['voc', 'cityscapes', 'camvid'] as const, describe: 'dataset layout (default: the one the checkpoint was trained on)' })
    .option('split', { type: 'string', default: 'val' })
    .option('mode', { choices: ['whole', 'slide'] as const, default: 'whole' as const })
    .option('crop', { type: 'string', describe: 'sliding window HxW (default: the training crop)' })
    .option('stride', { type: 'string', describe: 'sliding window step HxW (default: 2/3 of the window)' })
    .option('scale', { type: 'number', describe: 'resize factor before inference (default: the training one)' })
    .option('scales', { type: 'string', default: '1', describe: 'comma-separated multi-scale factors, e.g. 0.75,1,1.25' })
    .option('flip', { type: 'boolean', default: false, describe: 'add horizontally flipped predictions' })
    .option('save-dir', { type: 'string', describe: 'write colourised prediction PNGs (dataset palette) here' })
    .option('panels', { type: 'number', default: 0, describe: 'with --save-dir: also write image | ground truth | prediction panels for the first N images' })
    .option('limit', { type: 'number', describe: 'evaluate only the first N images' })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON object instead of the table' })
    .option('backend', { choices: ['auto', 'tensorflow', 'cpu', 'wasm'] as const, default: 'auto' as const })
    .middleware(resolvePaths(['checkpoint', 'data', 'save-dir']))
    .parseAsync();

  const checkpoint = argv.checkpoint ?? newestCheckpoint(DEFAULT_RUNS);
  if (!checkpoint) {
    throw new Error(
      `no checkpoint given and none found under ${relative(process.cwd(), DEFAULT_RUNS) || DEFAULT_RUNS}/. ` +
        'Train one with `npx nx run segment:train` (about 20 minutes on CPU), or pass --checkpoint <file.safetensors>.',
    );
  }
  const info0 = describeBackend(await initBackend(argv.backend as BackendName));
  if (!argv.json) console.log(info0);
  const ck = loadCheckpoint(checkpoint);
  const spec = ck.state.model as unknown as SegmenterSpec | undefined;
  if (!spec?.arch) throw new Error(`${checkpoint} has no segmenter spec: not written by segment:train`);
  const extra = (ck.state.extra ?? {}) as { format?: DatasetFormat; baseScale?: number; cropSize?: [number, number] };
  const format = (argv.format ?? extra.format) as DatasetFormat | undefined;
  if (!format) throw new Error(`${checkpoint} does not say which dataset it was trained on: pass --format voc|cityscapes|camvid`);
  const info = DATASETS[format];
  if (info.classNames.length !== spec.numClasses) {
    throw new Error(`${checkpoint} predicts ${spec.numClasses} classes but ${format} has ${info.classNames.length}`);
  }
  const data = argv.data ?? (format === 'camvid' ? DEFAULT_CAMVID : undefined);
  if (!data) throw new Error(`--data is required for ${format} (the dataset root)`);
  let samples = listSamples(format, data, { split: argv.split });
  if (argv.limit) samples = samples.slice(0, argv.limit);
  const scales = argv.scales.split(',').map((s) => {
    const v = Number(s);
    if (!(v > 0)) throw new Error(`--scales must be positive numbers separated by commas, got '${argv.scales}'`);
    return v;
  });
  const trainCrop = extra.cropSize ?? [512, 512];
  const crop = argv.crop ? parseSize(argv.crop, 'crop') : trainCrop;
  const stride = argv.stride ? parseSize(argv.stride, 'stride') : ([Math.ceil((crop[0] * 2) / 3), Math.ceil((crop[1] * 2) / 3)] as [number, number]);

  // A refocused checkpoint is evaluated in its deployed (fused) form: the plain architecture.
  const trained = buildFromSpec(spec, trainCrop);
  setModelWeights(trained, ck.weights, { source: checkpoint });
  const models = new SizedModels(spec, deployWeights(trained, spec));
  trained.dispose();

  const { metrics } = await evaluateSplit(models, samples, {
    info,
    mode: argv.mode,
    baseScale: argv.scale ?? extra.baseScale ?? 1,
    scales,
    flip: argv.flip,
    crop,
    stride,
    mean: info.mean,
    std: info.std,
    saveDir: argv['save-dir'],
    panels: argv.panels,
    progress: !argv.json,
    label: 'eval',
  });
  models.dispose();
  if (argv.json) {
    console.log(
      JSON.stringify({
        checkpoint: relative(REPO_ROOT, checkpoint).startsWith('..') ? checkpoint : relative(REPO_ROOT, checkpoint),
        format,
        split: argv.split,
        images: samples.length,
        mode: argv.mode,
        scales,
        flip: argv.flip,
        refconv: spec.refconv ? { mapK: spec.refconv.mapK, aspp: spec.refconv.aspp, layers: spec.refconv.layers.length } : null,
        ...metricsToJson(metrics, info.classNames),
      }),
    );
  } else {
    console.log(`${checkpoint} on ${format} ${argv.split} (${samples.length} images, ${argv.mode}, scales ${scales.join('/')}${argv.flip ? ' + flip' : ''})`);
    console.log(formatMetricsTable(metrics, info.classNames));
    if (argv['save-dir']) console.log(`colourised predictions in ${argv['save-dir']}`);
  }
}

main().catch((e: Error) => {
  console.error(`segment:eval: ${e.message}`);
  process.exit(1);
});
