/**
 * `nx run classify:eval -- --checkpoint C --data D [--json]`: top-1, top-5, per-class accuracy
 * and the confusion matrix of a baseline, RefConv or fused checkpoint on a dataset's val split.
 */
import { describeBackend, initBackend, type BackendName } from '@refconv/core';
import { createCli, resolvePaths } from '@refconv/engine';
import { isDataKeyword } from './args.js';
import { BatchLoader } from '../data/loader.js';
import { evaluate, type EvalResult } from '../evaluate.js';
import { modelKind, loadClassifier } from '../model.js';
import { prepareData } from '../protocol.js';
import * as tf from '@tensorflow/tfjs';
import { createModel, loadTorchWeights } from '@refconv/backbones';
import { defaultConfig, type RunConfig } from '../config.js';
import { openDataset } from '../data/open.js';
import type { ModelSpec } from '../model.js';

function confusionTable(r: EvalResult, names: string[]): string {
  const w = Math.max(5, ...r.confusion.flat().map((v) => String(v).length)) + 1;
  const head = ' '.repeat(14) + names.map((_, j) => String(j).padStart(w)).join('');
  const rows = r.confusion.map((row, i) => `${String(i).padStart(2)} ${names[i]!.slice(0, 10).padEnd(11)}` + row.map((v) => String(v).padStart(w)).join(''));
  return [head, ...rows].join('\n');
}

function fromCheckpoint(file: string): { model: tf.LayersModel; spec: ModelSpec; classNames?: string[]; source: string } {
  const { model, spec, checkpoint } = loadClassifier(file);
  return { model, spec, classNames: checkpoint.state.classNames, source: file };
}

/** Builds `arch` with as many outputs as the dataset has classes and loads a PyTorch state dict into it. */
function fromTorch(file: string, arch: string, inputSize: number, width: number, cfg: RunConfig): { model: tf.LayersModel; spec: ModelSpec; classNames?: string[]; source: string } {
  const numClasses = openDataset(cfg.data, cfg.format, { valLabels: cfg.valLabels }).classNames.length;
  const spec: ModelSpec = { arch, numClasses, inputSize, inChannels: 3, width };
  const plain = createModel(arch, { numClasses, inputSize, width });
  const { model } = loadTorchWeights(plain, file);
  if (model !== plain) {
    plain.dispose();
    spec.refocus = { mapK: 3, grouping: 'official', init: 'zero', frozen: 'official' };
  }
  return { model, spec, source: file };
}

async function main(argv: string[]): Promise<void> {
  const a = await createCli(argv, 'classify:eval')
    .option('checkpoint', { type: 'string', describe: 'classify checkpoint (.safetensors): baseline, RefConv or fused' })
    .option('torch-weights', { type: 'string', describe: 'PyTorch state dict as safetensors (torchvision or official RefConv), loaded with @refconv/backbones; needs --arch' })
    .option('arch', { type: 'string', describe: 'architecture for --torch-weights' })
    .option('input-size', { type: 'number', default: 224, describe: 'input size for --torch-weights' })
    .option('width', { type: 'number', default: 1, describe: 'width multiplier for --torch-weights' })
    .check((v) => {
      // returned strings are usage errors (exit 2), like an unknown option
      if (!v.checkpoint === !v.torchWeights) return 'pass exactly one of --checkpoint or --torch-weights';
      if (v.torchWeights && !v.arch) return '--torch-weights needs --arch';
      return true;
    })
    .option('data', { type: 'string', default: 'fashion-mnist', describe: "dataset folder or 'fashion-mnist'" })
    .option('format', { choices: ['auto', 'fashion-mnist', 'imagefolder'] as const, default: 'auto' as const })
    .option('val-labels', { type: 'string' })
    .option('eval-resize', { type: 'number', describe: 'Resize shorter side (default input/0.875, = input for Fashion-MNIST)' })
    .option('limit', { type: 'number', describe: 'evaluate a fixed subset of this many images' })
    .option('batch-size', { type: 'number', default: 64 })
    .option('workers', { type: 'number', default: 1 })
    .option('skip-bad-images', { type: 'boolean', default: false })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON object on stdout' })
    .option('backend', { choices: ['auto', 'tensorflow', 'cpu', 'wasm'] as const, default: 'auto' as const })
    .middleware(resolvePaths(['checkpoint', 'torch-weights', 'data', 'val-labels'], isDataKeyword))
    .parseAsync();
  const info = await initBackend(a.backend as BackendName);
  if (!a.json) console.log(describeBackend(info));
  const cfg = { ...defaultConfig(), data: a.data, format: a.format, valLabels: a.valLabels, inputSize: a.inputSize, evalResize: a.evalResize, trainLimit: undefined, valLimit: a.limit };
  const { model, spec, classNames: ckNames, source } = a.checkpoint ? fromCheckpoint(a.checkpoint) : fromTorch(a.torchWeights!, a.arch!, a.inputSize, a.width, cfg);
  cfg.inputSize = spec.inputSize;
  const p = await prepareData(cfg);
  if (ckNames && JSON.stringify(ckNames) !== JSON.stringify(p.data.classNames)) {
    throw new Error(`${source} was trained on classes [${ckNames.join(', ')}] but ${a.data} has [${p.data.classNames.join(', ')}]`);
  }
  if (spec.numClasses !== p.data.classNames.length) throw new Error(`${source} has ${spec.numClasses} outputs but ${a.data} has ${p.data.classNames.length} classes`);
  if (spec.inChannels !== p.data.channels) throw new Error(`${source} expects ${spec.inChannels}-channel input but ${a.data} has ${p.data.channels}-channel images`);
  const loader = new BatchLoader({ batchSize: a.batchSize, workers: a.workers, skipBad: a.skipBadImages });
  try {
    const r = await evaluate(model, p.val, loader, p.evalTransform, { classNames: p.data.classNames, progress: !a.json, label: 'eval' });
    const summary = {
      checkpoint: source,
      kind: modelKind(spec),
      arch: spec.arch,
      data: p.data.root,
      images: r.images,
      top1: r.top1,
      top5: r.top5,
      loss: r.loss,
      perClass: r.perClass,
      confusion: r.confusion,
      skippedImages: loader.badImages,
    };
    if (a.json) {
      process.stdout.write(JSON.stringify(summary) + '\n');
      return;
    }
    console.log(`${source} (${summary.kind} ${spec.arch}) on ${p.data.name}, ${r.images} images`);
    console.log(`top-1 ${r.top1.toFixed(2)}%  top-5 ${r.top5.toFixed(2)}%  loss ${r.loss.toFixed(4)}`);
    console.log('\nper-class accuracy:');
    for (const c of r.perClass) console.log(`  ${c.name.padEnd(16)} ${c.accuracy.toFixed(2).padStart(6)}%  (${c.correct}/${c.total})`);
    console.log('\nconfusion matrix (rows: true class, columns: predicted):');
    console.log(confusionTable(r, p.data.classNames));
    if (loader.badImages.length) console.log(`\nskipped ${loader.badImages.length} unreadable image(s): ${loader.badImages.map((b) => b.file).join(', ')}`);
  } finally {
    await loader.close();
    model.dispose();
  }
}

main(process.argv.slice(2)).catch((e: Error) => {
  console.error(`classify:eval failed: ${e.message}`);
  process.exit(1);
});
