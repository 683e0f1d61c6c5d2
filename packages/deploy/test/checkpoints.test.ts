/**
 * Detector / segmenter checkpoints to ONNX (`exportDetectorCheckpoint`, `exportSegmenterCheckpoint`,
 * and `deploy:export` on them). The reference is the checkpoint's own network as its package rebuilds
 * it (`loadDetector`; `buildFromSpec` + the stored weights), *unfused*: RefConv layers and BatchNorm
 * as trained, so fusion, BN folding and export are checked together.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { modelWeights, saveCheckpoint, setModelWeights } from '@refconv/engine';
import { buildDetector, detectorWeights, loadDetector, type DetectorDescription } from '@refconv/detect';
import { buildFromSpec, type SegmenterSpec } from '@refconv/segment';
import { checkpointTask, createSession, exportDetectorCheckpoint, exportSegmenterCheckpoint, readOnnxMetadata, runSession } from '../src/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'refconv-deploy-ck-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Random BN statistics everywhere (nested models included), so folding is not an identity. */
function randomiseBn(model: tf.LayersModel, seed: number): void {
  let s = seed;
  const rnd = (): number => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (const layer of model.layers) {
    if (layer instanceof tf.LayersModel) randomiseBn(layer, seed + 1);
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const names = layer.weights.map((v) => v.originalName.split('/').pop());
    layer.setWeights(layer.getWeights().map((w, i) => tf.tensor(Float32Array.from({ length: w.size }, () => (names[i] === 'beta' ? rnd() - 0.5 : names[i] === 'moving_mean' ? (rnd() - 0.5) * 0.4 : 0.5 + rnd())), w.shape)));
  }
}

/** max rel err of every output: ONNX bytes in onnxruntime-node vs a tfjs model, NCHW feed, batch 2. */
async function compare(bytes: Uint8Array, ref: tf.LayersModel, names: string[]): Promise<number[]> {
  const [, h, w, c] = ref.inputs[0].shape as number[];
  const x = tf.randomNormal([2, h, w, c], 0, 1, 'float32', 5);
  const preds = ref.predict(x);
  const refs = (Array.isArray(preds) ? preds : [preds]).map((t) => tf.tidy(() => (t.rank === 4 ? tf.transpose(t, [0, 3, 1, 2]) : t).dataSync() as Float32Array).slice());
  const session = await createSession(bytes);
  const out = await runSession(session, tf.tidy(() => tf.transpose(x, [0, 3, 1, 2]).dataSync() as Float32Array).slice(), [2, c, h, w]);
  await session.release();
  x.dispose();
  expect(Object.keys(out)).toEqual(names);
  return names.map((n, i) => {
    let num = 0;
    let den = 0;
    out[n].data.forEach((v, j) => {
      num = Math.max(num, Math.abs(v - refs[i][j]));
      den = Math.max(den, Math.abs(refs[i][j]));
    });
    return num / den;
  });
}

describe('detector checkpoints to ONNX', () => {
  const desc = (kind: 'retinanet' | 'fasterrcnn', refocus: boolean): DetectorDescription =>
    ({
      kind,
      options: { numClasses: 2, backbone: { arch: 'tiny', tinyWidths: [8, 16, 16, 16] }, fpnChannels: 8, ...(kind === 'retinanet' ? { headConvs: 1 } : { representationSize: 16 }) },
      categories: { ids: [1, 2], names: ['cell', 'platelet'] },
      resize: { minSize: 64, maxSize: 96 },
      ...(refocus ? { refocus: { scope: 'backbone', mapK: 3 } } : {}),
    }) as DetectorDescription;

  function writeDetector(d: DetectorDescription, file: string): void {
    const det = buildDetector(d);
    for (const part of det.parts()) randomiseBn(part, 3);
    // RefConv transforms start at zero in some inits: perturb every weight a little so W_t != W_b
    for (const part of det.parts()) for (const v of part.trainableWeights) v.write(tf.tidy(() => v.read().add(tf.randomNormal(v.shape as number[], 0, 0.02, 'float32', 7))));
    saveCheckpoint(file, { weights: detectorWeights(det), state: { epoch: 1, step: 1, classNames: d.categories.names, model: d as unknown as Record<string, unknown> } });
    for (const part of det.parts()) part.dispose();
  }

  it('RetinaNet with a RefConv backbone, 64x96: fused + folded export equals the unfused checkpoint network (1e-4)', async () => {
    const file = path.join(dir, 'retinanet-refconv.safetensors');
    writeDetector(desc('retinanet', true), file);
    expect(checkpointTask(file)).toBe('detect');
    const ex = exportDetectorCheckpoint(file, { size: [64, 96] });
    expect(ex.refconv).toBe(true);
    expect(ex.graphs.map((g) => g.part)).toEqual(['network']);
    const md = readOnnxMetadata(ex.graphs[0].bytes);
    expect(md.classNames).toEqual(['cell', 'platelet']);
    expect(md.inputSize).toEqual([64, 96]);
    expect(md.props['refconv.task']).toBe('detect');
    const { det } = loadDetector(file, { backbone: { arch: 'tiny', tinyWidths: [8, 16, 16, 16], inputSize: [64, 96] } });
    expect(det.model.layers.some((l) => l instanceof tf.LayersModel && l.layers.some((k) => k.getClassName() === 'RefConv2D'))).toBe(true);
    const errs = await compare(ex.graphs[0].bytes, det.model, ex.graphs[0].outputNames);
    console.log(`checkpoint retinanet (RefConv, tiny backbone) 64x96: max rel err vs the unfused network ${Math.max(...errs).toExponential(2)}`);
    expect(Math.max(...errs)).toBeLessThan(1e-4);
    ex.graphs.forEach((g) => g.model.dispose());
  });

  it('Faster R-CNN: network and box head files; deploy:export writes both and checks them; sizes not /32 are an error', async () => {
    const file = path.join(dir, 'fasterrcnn.safetensors');
    writeDetector(desc('fasterrcnn', false), file);
    expect(() => exportDetectorCheckpoint(file, { size: [64, 90] })).toThrow(/multiples of 32.*64x90/);
    expect(() => exportDetectorCheckpoint(file)).toThrow(/fixed input size/);
    const ex = exportDetectorCheckpoint(file, { size: [64, 64] });
    expect(ex.graphs.map((g) => g.part)).toEqual(['network', 'box_head']);
    const { det } = loadDetector(file, { backbone: { arch: 'tiny', tinyWidths: [8, 16, 16, 16], inputSize: [64, 64] } });
    const errs = await compare(ex.graphs[0].bytes, det.model, ex.graphs[0].outputNames);
    const headErrs = await compare(ex.graphs[1].bytes, det.parts()[1], ['class_logits', 'box_regression']);
    console.log(`checkpoint fasterrcnn 64x64: network ${Math.max(...errs).toExponential(2)}, box head ${Math.max(...headErrs).toExponential(2)}`);
    expect(Math.max(...errs, ...headErrs)).toBeLessThan(1e-4);
    // the CLI
    const out = path.join(dir, 'frcnn.onnx');
    const r = spawnSync(process.execPath, ['--conditions=@refconv/source', '--import', 'tsx', path.join(here, '../src/cli/export.ts'), '--checkpoint', file, '--out', out, '--size', '64', '--json'], { encoding: 'utf8', cwd: path.join(here, '..') });
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(summary.task).toBe('detect');
    expect(summary.files.map((f: { file: string }) => f.file)).toEqual([out, path.join(dir, 'frcnn.box_head.onnx')]);
    for (const f of summary.files) expect(f.maxRelErrVsTfjs).toBeLessThan(1e-4);
  }, 120_000);
});

describe('segmenter checkpoints to ONNX', () => {
  const spec: SegmenterSpec = { arch: 'deeplabv3plus', backbone: 'resnet18', backboneWidth: 0.25, outputStride: 16, numClasses: 3, channels: 8, lowLevelChannels: 8, dropout: 0.1, aux: true };

  it('DeepLabV3+ (aux) at the training crop equals the unfused checkpoint network; at another size the logits follow it', async () => {
    const file = path.join(dir, 'deeplab.safetensors');
    const model = buildFromSpec(spec, [64, 64]);
    randomiseBn(model, 9);
    saveCheckpoint(file, { weights: modelWeights(model), state: { epoch: 1, step: 1, classNames: ['bg', 'rbc', 'wbc'], model: spec as unknown as Record<string, unknown>, extra: { cropSize: [64, 64], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] } } });
    expect(checkpointTask(file)).toBe('segment');
    const ex = exportSegmenterCheckpoint(file);
    expect(ex.inputSize).toEqual([64, 64]);
    const md = readOnnxMetadata(ex.graphs[0].bytes);
    expect(md.mean).toEqual([0.5, 0.5, 0.5]);
    expect(md.classNames).toEqual(['bg', 'rbc', 'wbc']);
    const ref = buildFromSpec(spec, [64, 64]);
    const ck = (await import('@refconv/engine')).loadCheckpoint(file);
    setModelWeights(ref, ck.weights, { source: file });
    const errs = await compare(ex.graphs[0].bytes, ref, ['logits', 'aux_logits']);
    console.log(`checkpoint deeplabv3plus (aux) 64x64: max rel err vs the unfused network logits ${errs[0].toExponential(2)}, aux ${errs[1].toExponential(2)}`);
    expect(Math.max(...errs)).toBeLessThan(1e-4);
    const big = exportSegmenterCheckpoint(file, { size: [96, 80] });
    const session = await createSession(big.graphs[0].bytes);
    const out = await runSession(session, new Float32Array(3 * 96 * 80), [1, 3, 96, 80]);
    await session.release();
    expect(out.logits.dims).toEqual([1, 3, 96, 80]);
    for (const e of [ex, big]) e.graphs.forEach((g) => g.model.dispose());
    model.dispose();
    ref.dispose();
  }, 120_000);
});
