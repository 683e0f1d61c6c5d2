/**
 * `nx run detect:train [-- options]`: trains a RetinaNet, then evaluates it with COCO metrics.
 *
 * - no arguments: a small CPU-sized RetinaNet (ResNet-18 x0.25 backbone from scratch, 64-channel
 *   FPN/heads) on the BCCD copy in `datasets/bccd`, evaluated on its test split;
 * - `--from C`: starts from a trained detector checkpoint (fine-tuning; the equal-epoch control);
 * - `--from C --refconv`: refocuses the backbone (or `--refconv-scope all`) of C, trains the
 *   transforms and the unfrozen weights, fuses, and evaluates the fused (plain) detector.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { countFlops, countParams, describeBackend, fuse, initBackend, type BackendName } from '@refconv/core';
import { createCli, saveCheckpoint } from '@refconv/engine';
import { openDataset } from '../data/open.js';
import type { Detector } from '../models/detector.js';
import type { BoxLossKind } from '../models/retinanet.js';
import { createDetector, detectorWeights, loadDetector, refocusDetector, type DetectorDescription, type RefocusScope } from '../pipeline/checkpoint.js';
import { evaluateDetector } from '../pipeline/evaluate.js';
import { trainDetector } from '../pipeline/train.js';
import { DEFAULT_DATA, REPO_ROOT, reportWarnings, statsObject, writeEvaluationOutputs } from './common.js';

async function main(): Promise<void> {
  const args = await createCli(process.argv.slice(2), 'detect:train')
    .usage('$0 [--data DIR] [--epochs N] [--from CKPT [--refconv]] ...')
    .option('data', { type: 'string', default: DEFAULT_DATA, describe: 'VOC root or COCO root/JSON' })
    .option('train-split', { type: 'string', default: 'train' })
    .option('test-split', { type: 'string', default: 'test', describe: 'split evaluated after training' })
    .option('images', { type: 'string', describe: 'COCO image folder when --data is a JSON file' })
    .option('classes', { type: 'string', describe: 'comma-separated class names in label order; other names are an error in every split (default: the checkpoint\'s, else the dataset\'s own list)' })
    .option('drop-unknown-classes', { type: 'boolean', default: false, describe: 'drop (and count) objects of classes outside the list instead of failing' })
    .option('out', { type: 'string', describe: 'output folder (default runs/detect/<name>)' })
    .option('name', { type: 'string', describe: 'run name (default bccd-<model>, with -finetune or -refconv after --from)' })
    .option('model', { choices: ['retinanet', 'fasterrcnn'] as const, default: 'retinanet' as const, describe: 'detector architecture' })
    .option('representation-size', { type: 'number', default: 256, describe: 'Faster R-CNN box head FC width (torchvision: 1024)' })
    .option('backbone', { type: 'string', default: 'resnet18', describe: "backbone: 'tiny' or a @refconv/backbones architecture" })
    .option('backbone-width', { type: 'number', default: 0.25, describe: 'width multiplier of the backbone' })
    .option('backbone-weights', { type: 'string', describe: 'ImageNet backbone weights (safetensors, torchvision names); implies --freeze-bn' })
    .option('fpn-channels', { type: 'number', default: 64 })
    .option('head-convs', { type: 'number', default: 2, describe: 'conv+ReLU blocks per head (torchvision: 4)' })
    .option('anchor-base', { type: 'number', default: 16, describe: 'P3 anchor size; levels double it (torchvision: 32)' })
    .option('min-size', { type: 'number', default: 256, describe: 'shorter image side after resizing' })
    .option('max-size', { type: 'number', default: 416, describe: 'cap of the longer side' })
    .option('box-loss', { choices: ['l1', 'smooth_l1', 'giou'] as const, default: 'l1' as BoxLossKind })
    .option('freeze-bn', { type: 'boolean', default: false, describe: 'frozen BatchNorm (for pretrained backbones); default trains BN from scratch' })
    .option('epochs', { type: 'number', default: 16 })
    .option('batch-size', { type: 'number', default: 4 })
    .option('lr', { type: 'number', default: 0.01 })
    .option('momentum', { type: 'number', default: 0.9 })
    .option('weight-decay', { type: 'number', default: 1e-4 })
    .option('warmup-steps', { type: 'number', default: 100 })
    .option('seed', { type: 'number', default: 0 })
    .option('from', { type: 'string', describe: 'trained detector checkpoint to start from' })
    .option('refconv', { type: 'boolean', default: false, describe: 'refocus the --from detector, train, fuse' })
    .option('refconv-scope', { choices: ['backbone', 'all'] as const, default: 'backbone' as RefocusScope })
    .option('map-k', { choices: [1, 3, 5] as const, default: 3 as 1 | 3 | 5 })
    .option('refconv-init', { choices: ['default', 'zero'] as const, default: 'default' as const })
    .option('resume', { type: 'boolean', default: false, describe: 'continue from <out>/last.safetensors' })
    .option('max-train-images', { type: 'number', describe: 'use only the first N training images (smoke tests)' })
    .option('max-test-images', { type: 'number', describe: 'evaluate only the first N test images' })
    .option('visualize', { type: 'number', default: 4, describe: 'write N test images with drawn detections' })
    .option('backend', { choices: ['auto', 'tensorflow', 'cpu', 'wasm'] as const, default: 'auto' as BackendName })
    .check((a) => {
      if (a.refconv && !a.from) throw new Error('--refconv needs --from <trained detector checkpoint>');
      return true;
    })
    .parseAsync();

  console.log(describeBackend(await initBackend(args.backend)));
  const classArgs = { classes: args.classes?.split(',').map((c) => c.trim()), dropUnknownClasses: args.dropUnknownClasses };

  // Model: fresh, or from a checkpoint (whose categories and resize then apply).
  let det: Detector;
  let desc: DetectorDescription;
  if (args.from) {
    ({ det, desc } = loadDetector(args.from));
    if (desc.refocus) throw new Error(`--from ${args.from}: this is a refocused training checkpoint; start from a plain (fused or baseline) detector`);
    console.log(`loaded ${args.from}`);
  } else {
    const train0 = openDataset(args.data, { split: args.trainSplit, images: args.images, ...classArgs });
    const common = {
      numClasses: train0.categories.names.length,
      backbone: { arch: args.backbone, width: args.backboneWidth, ...(args.backboneWeights ? { weights: path.resolve(args.backboneWeights) } : {}) },
      fpnChannels: args.fpnChannels,
      freezeBatchNorm: args.freezeBn || Boolean(args.backboneWeights),
      seed: args.seed,
    };
    const levels = [0, 1, 2, 3, 4].map((l) => args.anchorBase * 2 ** l);
    const base = { categories: train0.categories, resize: { minSize: args.minSize, maxSize: args.maxSize } };
    desc =
      args.model === 'retinanet'
        ? {
            ...base,
            kind: 'retinanet',
            options: {
              ...common,
              headConvs: args.headConvs,
              anchorSizes: levels.map((s) => [0, 1 / 3, 2 / 3].map((e) => Math.trunc(s * 2 ** e))),
              boxLoss: args.boxLoss,
            },
          }
        : {
            ...base,
            kind: 'fasterrcnn',
            // torchvision's sampling sizes; proposal counts reduced for CPU (torchvision: 2000/2000 train, 1000/1000 test)
            options: { ...common, representationSize: args.representationSize, anchorSizes: levels, rpnPreNmsTopN: { train: 1000, test: 500 }, rpnPostNmsTopN: { train: 500, test: 300 } },
          };
    det = createDetector(desc);
  }
  // named after the detector actually trained (with --from: the checkpoint's kind)
  const name = args.name ?? `bccd-${desc.kind}${args.refconv ? '-refconv' : args.from ? '-finetune' : ''}`;
  const outDir = path.resolve(args.out ?? path.join(REPO_ROOT, 'runs', 'detect', name));
  fs.mkdirSync(outDir, { recursive: true });
  const plain = det;
  if (args.refconv) {
    const refocus = { scope: args.refconvScope, mapK: args.mapK, init: args.refconvInit, seed: args.seed };
    det = det.withModel(refocusDetector(det.model, refocus));
    desc = { ...desc, refocus };
    console.log(`refocused (${args.refconvScope}, map ${args.mapK}x${args.mapK}, init ${args.refconvInit}): trainable params ${countParams(det.model, { trainableOnly: true })}`);
  }
  console.log(`detector: ${countParams(det.model)} params (${countParams(det.model, { trainableOnly: true })} trainable), backbone ${desc.options.backbone.arch}`);

  const train = openDataset(args.data, { split: args.trainSplit, images: args.images, categories: desc.categories, ...classArgs });
  reportWarnings(train);
  // the test split is validated too before the first step (not after training)
  const test = openDataset(args.data, { split: args.testSplit, images: args.images, categories: desc.categories, ...classArgs });
  reportWarnings(test);
  if (args.maxTrainImages) train.records = train.records.slice(0, args.maxTrainImages);
  console.log(`train: ${train.records.length} images from ${train.source}`);

  const checkpoint = path.join(outDir, 'last.safetensors');
  const epochs = await trainDetector({
    det,
    description: desc,
    data: train,
    epochs: args.epochs,
    batchSize: args.batchSize,
    lr: args.lr,
    momentum: args.momentum,
    weightDecay: args.weightDecay,
    warmupSteps: args.warmupSteps,
    seed: args.seed,
    checkpoint,
    metricsLog: path.join(outDir, 'metrics.jsonl'),
    resume: args.resume,
    tag: name,
  });
  for (const e of epochs) console.log(`epoch ${e.epoch}: loss ${e.loss.toFixed(4)} (${Object.entries(e.terms).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}) ${e.seconds.toFixed(0)}s, waiting for data ${((100 * e.dataWaitSeconds) / e.seconds).toFixed(1)}%`);

  // The deployable detector: fused when refocused (same params/FLOPs as the plain one).
  let final = det;
  let finalDesc = desc;
  if (args.refconv) {
    final = det.withModel(fuse(det.model));
    finalDesc = { ...desc, refocus: undefined };
    console.log(`fused: ${countParams(final.model)} params (plain detector: ${countParams(plain.model)})`);
  }
  const finalFile = path.join(outDir, 'final.safetensors');
  saveCheckpoint(finalFile, { weights: detectorWeights(final), state: { epoch: args.epochs, step: 0, classNames: finalDesc.categories.names, model: finalDesc as unknown as Record<string, unknown> } });

  if (args.maxTestImages) test.records = test.records.slice(0, args.maxTestImages);
  const ev = await evaluateDetector(final, test, finalDesc.resize);
  const outs = await writeEvaluationOutputs(outDir, args.testSplit, test, ev, args.visualize);
  console.log(`\nCOCO bbox metrics on ${test.source}, ${test.records.length} images:`);
  for (const l of ev.summary) console.log(l);
  console.log(JSON.stringify(statsObject(ev.stats)));
  console.log(`\noutputs in ${outDir}:\n  ${finalFile} (detector)\n  ${checkpoint} (training state, --resume)\n  ${path.join(outDir, 'metrics.jsonl')}\n  ${outs.results}\n  ${outs.stats}`);
  if (outs.images.length) console.log(`  ${path.dirname(outs.images[0]!)}/ (${outs.images.length} PNGs with detections)`);
  void countFlops;
}

main().catch((e: unknown) => {
  process.stderr.write(`detect:train: ${(e as Error).message}\n`);
  process.exit(1);
});
