/**
 * classify checkpoint -> ONNX -> predict: onnxruntime-node's probabilities on real image files equal
 * those of the checkpoint's own tfjs model (classify's loadClassifier, BN not folded) with the same
 * preprocessing; and the two CLIs end to end.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFromSpec, loadClassifier, type ModelSpec } from '@refconv/classify';
import { modelWeights, saveCheckpoint } from '@refconv/engine';
import { exportClassifierCheckpoint, predictOnnx, predictTfjs, readOnnxMetadata } from '../src/index.js';

let dir: string;
let ckpt: string;
const images: string[] = [];
const CLASSES = ['alpha', 'beta', 'gamma', 'delta'];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deploy-test-'));
  const spec: ModelSpec = { arch: 'cifar_resnet20', numClasses: 4, inputSize: 32, inChannels: 3, width: 1, refocus: { mapK: 3, grouping: 'official', init: 'default', frozen: 'official' }, fused: true };
  const model = buildFromSpec(spec);
  let s = 9;
  const rnd = (): number => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    layer.setWeights(layer.getWeights().map((w, i) => tf.tensor(Float32Array.from({ length: w.size }, () => (i === 1 || i === 2 ? rnd() - 0.5 : 0.5 + rnd())), w.shape)));
  }
  ckpt = path.join(dir, 'fused.safetensors');
  saveCheckpoint(ckpt, { weights: modelWeights(model), state: { epoch: 1, step: 1, classNames: CLASSES, model: spec as unknown as Record<string, unknown> } });
  model.dispose();
  for (let i = 0; i < 3; i++) {
    const w = 40 + 7 * i;
    const h = 37 + 5 * i;
    const px = Buffer.from(Array.from({ length: w * h * 3 }, (_, j) => (j * (17 + i) + ((j / 3) | 0) * 5) % 256));
    const f = path.join(dir, `img${i}.${i === 1 ? 'jpg' : 'png'}`);
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).toFile(f);
    images.push(f);
  }
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('classify checkpoint to ONNX', () => {
  it('predictOnnx equals the checkpoint tfjs model on image files (probabilities 1e-4, same top-k)', async () => {
    const ex = exportClassifierCheckpoint(ckpt);
    expect(ex.kind).toBe('fused');
    const file = path.join(dir, 'm.onnx');
    fs.writeFileSync(file, ex.bytes);
    const md = readOnnxMetadata(ex.bytes);
    expect(md).toMatchObject({ classNames: CLASSES, inputSize: [32, 32], mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], layout: 'NCHW' });
    const onnxPreds = await predictOnnx(file, images, { topk: 4 });
    const { model } = loadClassifier(ckpt); // unfolded BN: an independent tfjs graph
    const ref = await predictTfjs(model, md, images, 4);
    model.dispose();
    ex.model.dispose();
    for (let i = 0; i < images.length; i++) {
      expect(onnxPreds[i].top.map((t) => t.name)).toEqual(ref[i].top.map((t) => t.name));
      onnxPreds[i].top.forEach((t, j) => expect(Math.abs(t.probability - ref[i].top[j].probability)).toBeLessThan(1e-4));
      expect(onnxPreds[i].top.reduce((a, t) => a + t.probability, 0)).toBeCloseTo(1, 5);
    }
  });

  it('CLIs: deploy:export then deploy:predict --json', () => {
    const env = { ...process.env, REFCONV_USER_CWD: dir };
    const node = [process.execPath, '--conditions=@refconv/source', '--import', 'tsx'];
    const ex = spawnSync(node[0], [...node.slice(1), 'src/cli/export.ts', '--checkpoint', 'fused.safetensors', '--out', 'cli.onnx', '--json'], { encoding: 'utf8', env, cwd: path.join(import.meta.dirname, '..') });
    expect(ex.status, ex.stderr).toBe(0);
    const summary = JSON.parse(ex.stdout.trim().split('\n').pop()!) as { maxRelErrVsTfjs: number; classes: number };
    expect(summary.classes).toBe(4);
    expect(summary.maxRelErrVsTfjs).toBeLessThan(1e-4);
    const pr = spawnSync(node[0], [...node.slice(1), 'src/cli/predict.ts', '--model', 'cli.onnx', '--images', ...images.map((f) => path.basename(f)), '--topk', '2', '--json'], { encoding: 'utf8', env, cwd: path.join(import.meta.dirname, '..') });
    expect(pr.status, pr.stderr).toBe(0);
    const res = JSON.parse(pr.stdout.trim().split('\n').pop()!) as { predictions: { image: string; top: { name: string }[] }[] };
    expect(res.predictions.map((p) => p.image)).toEqual(images);
    expect(res.predictions.every((p) => p.top.length === 2 && CLASSES.includes(p.top[0].name))).toBe(true);
    const tj = spawnSync(node[0], [...node.slice(1), 'src/cli/predict.ts', '--checkpoint', 'fused.safetensors', '--images', ...images.map((f) => path.basename(f)), '--topk', '2', '--json'], { encoding: 'utf8', env, cwd: path.join(import.meta.dirname, '..') });
    expect(tj.status, tj.stderr).toBe(0);
    const tres = JSON.parse(tj.stdout.trim().split('\n').pop()!) as { runtime: string; predictions: { top: { name: string; probability: number }[] }[] };
    expect(tres.runtime).toBe('tfjs');
    const ores = res as unknown as typeof tres;
    tres.predictions.forEach((p, i) => p.top.forEach((t, j) => {
      expect(t.name).toBe(ores.predictions[i].top[j].name);
      expect(Math.abs(t.probability - ores.predictions[i].top[j].probability)).toBeLessThan(1e-4);
    }));
    const bad = spawnSync(node[0], [...node.slice(1), 'src/cli/predict.ts', '--model', 'cli.onnx', '--images', 'missing.jpg'], { encoding: 'utf8', env, cwd: path.join(import.meta.dirname, '..') });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`image ${path.join(dir, 'missing.jpg')} does not exist`);
  });
});
