/**
 * `nx run detect:train [-- options]`: trains a detector, then evaluates it with COCO metrics
 * (the protocol itself is `runDetection` in pipeline/protocol.ts; this file only parses flags).
 *
 * - no arguments: a small CPU-sized RetinaNet (ResNet-18 x0.25 backbone from scratch, 64-channel
 *   FPN/heads) on the BCCD copy in `datasets/bccd`, evaluated on its test split;
 * - `--from C`: starts from a trained detector checkpoint (fine-tuning; the equal-epoch control);
 * - `--from C --refconv`: refocuses the backbone (or `--refconv-scope all`) of C, trains the
 *   transforms and the unfrozen weights, fuses, and evaluates the fused (plain) detector.
 */
import * as path from 'node:path';
import { describeBackend, initBackend, type BackendName } from '@refconv/core';
import { applyDeprecatedAliases, cliCommand, createCli, launcherOptions, launchSingleRun, loadCheckpoint, PreemptedError, PREEMPTED_EXIT_CODE, resolvePaths, trainingOptions } from '@refconv/engine';
import type { BoxLossKind } from '../models/retinanet.js';
import type { RefocusScope } from '../pipeline/checkpoint.js';
import { runDetection } from '../pipeline/protocol.js';
import { DEFAULT_DATA, REPO_ROOT, statsObject, writeEvaluationOutputs } from './common.js';

/** Old detect spellings, kept for one version (a warning names the new flag). */
export const DEPRECATED_ALIASES: Record<string, string> = { 'max-train-images': 'train-limit', 'max-test-images': 'val-limit' };

async function main(): Promise<void> {
  const argv = applyDeprecatedAliases(process.argv.slice(2), DEPRECATED_ALIASES, 'detect:train');
  // lr 0.005 at batch 4: torchvision's detection references train at 0.02 for batch 16 (linear
  // scaling). The earlier default, 0.01, was twice that and diverged from scratch on BCCD in 3 of
  // 3 runs on an AVX-512 + AMX host (loss 1.3 -> 3.2 or NaN after warmup; AP 0.000), while 0.005
  // converged for seeds 0 and 1 there (AP 0.115, 0.122).
  const args = await launcherOptions(trainingOptions(createCli(argv, 'detect:train'), {
    epochs: 16, batchSize: 4, lr: 0.005, momentum: 0.9, weightDecay: 1e-4, warmupStartFactor: 0.001, seed: 0,
    mapK: 3, grouping: 'official', refconvInit: 'default', frozen: 'official',
  }), 'the run')
    .usage('$0 [--data DIR] [--epochs N] [--from CKPT [--refconv]] ...')
    .option('data', { type: 'string', default: DEFAULT_DATA, describe: 'VOC root or COCO root/JSON' })
    .option('train-split', { type: 'string', default: 'train' })
    .option('test-split', { type: 'string', default: 'test', describe: 'split evaluated after training (--val-limit N: its first N images)' })
    .option('images', { type: 'string', describe: 'COCO image folder when --data is a JSON file' })
    .option('classes', { type: 'string', describe: "comma-separated class names in label order; other names are an error in every split (default: the checkpoint's, else the dataset's own list)" })
    .option('drop-unknown-classes', { type: 'boolean', default: false, describe: 'drop (and count) objects of classes outside the list instead of failing' })
    .option('name', { type: 'string', describe: 'run name (default bccd-<model>, with -finetune or -refconv after --from); --out defaults to runs/detect/<name>' })
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
    .option('refconv-scope', { choices: ['backbone', 'all'] as const, default: 'backbone' as RefocusScope, describe: 'with --refconv: refocus the backbone, or every conv incl. FPN and heads' })
    .option('visualize', { type: 'number', default: 4, describe: 'write N test images with drawn detections' })
    .option('backend', { choices: ['auto', 'tensorflow', 'cpu', 'wasm'] as const, default: 'auto' as BackendName })
    .check((a) => (a.refconv && !a.from ? '--refconv needs --from <trained detector checkpoint>' : true))
    // relative paths are relative to where the user ran the command (nx runs it in packages/detect)
    .middleware(resolvePaths(['data', 'images', 'out', 'from', 'backbone-weights']))
    .parseAsync();

  // --launcher slurm: the same command as one Slurm job (engine's slurm.ts); --status OUT: its state
  const submitted = launchSingleRun(args, {
    target: 'detect:train',
    command: cliCommand(path.resolve(REPO_ROOT, 'packages', 'detect'), path.join('src', 'cli', 'train.ts')),
    userArgv: argv,
    // the folder runDetection writes: --out, else runs/detect/<name> (named after the detector trained; with --from, the checkpoint's)
    out: () => args.out ?? path.join(REPO_ROOT, 'runs', 'detect', args.name ?? `bccd-${args.from ? String(loadCheckpoint(args.from).state.model?.kind) : args.model}${args.refconv ? '-refconv' : args.from ? '-finetune' : ''}`),
  });
  if (submitted) return;

  console.log(describeBackend(await initBackend(args.backend)));
  const r = await runDetection({
    ...args,
    runsDir: path.join(REPO_ROOT, 'runs', 'detect'),
    classes: args.classes?.split(',').map((c) => c.trim()),
    trainLimit: args.trainLimit,
    testLimit: args.valLimit,
  });
  for (const e of r.history) console.log(`epoch ${e.epoch}: loss ${e.trainLoss.toFixed(4)} (${Object.entries(e.train).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}) ${e.seconds.toFixed(0)}s, waiting for data ${((100 * e.dataWaitSeconds) / e.seconds).toFixed(1)}%`);
  const outs = await writeEvaluationOutputs(r.outDir, args.testSplit, r.test, r.evaluation, args.visualize);
  console.log(`\nCOCO bbox metrics on ${r.test.source}, ${r.test.records.length} images:`);
  for (const l of r.evaluation.summary) console.log(l);
  console.log(JSON.stringify(statsObject(r.evaluation.stats)));
  console.log(`\noutputs in ${r.outDir}:\n  ${r.finalFile} (detector)\n  ${r.lastFile} (training state, --resume)\n  ${path.join(r.outDir, 'metrics.jsonl')}\n  ${outs.results}\n  ${outs.stats}`);
  if (outs.images.length) console.log(`  ${path.dirname(outs.images[0]!)}/ (${outs.images.length} PNGs with detections)`);
}

main().catch((e: unknown) => {
  process.stderr.write(`detect:train: ${(e as Error).message}\n`);
  // preempted (SIGTERM / SIGUSR1 after the current step, checkpoint written): exit 75 asks a Slurm
  // script to requeue the job, which then resumes with --resume
  process.exit(e instanceof PreemptedError ? PREEMPTED_EXIT_CODE : 1);
});
