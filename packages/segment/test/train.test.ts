import { sharedDataset } from '@refconv/engine';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { countFlops, countParams } from '@refconv/core';
import { loadCheckpoint } from '@refconv/engine';
import { describe, expect, it } from 'vitest';
import { fuseCheck } from '../src/fuse-check.js';
import { createSegmenter, type BackboneFactory, type SegmenterSpec } from '../src/model/segmenter.js';
import { enableDilatedConvGradients } from '@refconv/core';
import { refocusSegmenter } from '../src/model/segmenter-refconv.js';
import { runSegmentation } from '../src/protocol.js';
import { train, type TrainOptions } from '../src/train.js';
import { tinyBackbone } from './tiny-backbone.js';

const CAMVID = sharedDataset('camvid');
const factory: BackboneFactory = (spec, size) => tinyBackbone(spec.outputStride, 4, 'backbone', size);
const spec: SegmenterSpec = { arch: 'deeplabv3', backbone: 'tiny', backboneWidth: 1, outputStride: 16, numClasses: 11, channels: 8, lowLevelChannels: 4, dropout: 0.1, aux: true };

function options(outDir: string, extra: Partial<TrainOptions> = {}): TrainOptions {
  const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WritableStream;
  return {
    data: CAMVID, format: 'camvid', trainSplit: 'train', valSplit: 'val', spec, cropSize: [48, 64], baseScale: 0.2, scaleRange: [0.5, 2],
    epochs: 1, batchSize: 2, lr: 0.01, momentum: 0.9, weightDecay: 1e-4, warmupEpochs: 0, auxWeight: 0.5, outDir, resume: false, seed: 1,
    evalEvery: 1, trainLimit: 4, valLimit: 2, backboneFactory: factory, progressStream: quiet, log: () => undefined, ...extra,
  };
}

describe('training at tiny scale (stand-in backbone, 4 real CamVid frames)', () => {
  it('trains, checkpoints, logs JSONL, and --resume continues from the saved epoch', async () => {
    const out = mkdtempSync(join(tmpdir(), 'segtrain-'));
    const first = await train(options(out));
    expect(first.metrics.mIoU).toBeGreaterThanOrEqual(0);
    expect(existsSync(join(out, 'last.safetensors'))).toBe(true);
    expect(existsSync(join(out, 'curves.png'))).toBe(true);
    const ck1 = loadCheckpoint(join(out, 'last.safetensors'));
    expect(ck1.state.epoch).toBe(1);
    expect(ck1.state.step).toBe(2);
    expect(ck1.optimizer?.step).toBe(2);
    // a longer run is a changed option: refused (listing old -> new) unless accepted
    await expect(train(options(out, { epochs: 2, resume: true }))).rejects.toThrow(/last\.safetensors was written with different options: epochs 1 -> 2\. /);
    const before = tf.memory().numTensors;
    const second = await train(options(out, { epochs: 2, resume: true, acceptChangedOptions: true }));
    expect(second.changedOptions).toEqual([{ option: 'epochs', old: 1, new: 2 }]);
    expect(tf.memory().numTensors).toBe(before); // the whole run frees what it made
    const ck2 = loadCheckpoint(join(out, 'last.safetensors'));
    expect([ck2.state.epoch, ck2.state.step]).toEqual([2, 4]);
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; epoch: number; val: { mIoU: number } }).filter((l) => l.type === 'epoch');
    expect(lines.map((l) => l.epoch)).toEqual([1, 2]);
    expect(lines[1]!.val.mIoU).toBeCloseTo(second.metrics.mIoU, 10);
  });

  it('--refconv from a trained checkpoint: refocuses backbone (+ASPP) convs, trains, and the fused model is the plain one', async () => {
    const base = mkdtempSync(join(tmpdir(), 'segbase-'));
    await train(options(base));
    const out = mkdtempSync(join(tmpdir(), 'segref-'));
    const run = await runSegmentation(options(out, { from: join(base, 'last.safetensors'), refconv: { mapK: 3, aspp: true } }));
    expect(run.fuse?.identical).toBe(true); // the protocol ends with the deployment check
    const ck = loadCheckpoint(join(out, 'last.safetensors'));
    const refSpec = ck.state.model as unknown as SegmenterSpec;
    // tiny backbone: 5 3x3 convs; plus ASPP b1..b3
    expect(refSpec.refconv!.layers.sort()).toEqual(['aspp.b1.conv', 'aspp.b2.conv', 'aspp.b3.conv', 'backbone.conv0', 'backbone.conv1', 'backbone.conv2', 'backbone.conv3', 'backbone.conv4'].sort());
    expect([...ck.weights.keys()].some((k) => k.endsWith('/transform'))).toBe(true);
    const report = await fuseCheck(join(out, 'last.safetensors'), { inputSize: [48, 64], factory });
    expect(report.params.fused).toBe(report.params.plain);
    expect(report.flops.fused).toBe(report.flops.plain);
    expect(report.argmaxAgreement).toBe(1);
    expect(report.maxAbsDiff).toBeLessThan(1e-4);
    expect(report.identical).toBe(true);
  });
});

describe('refocus + fuse on a segmenter (no training)', () => {
  enableDilatedConvGradients();
  it('fused predictions equal the refocused model, and differ from the un-refocused one (the transform is not a no-op)', async () => {
    const plain = createSegmenter({ ...spec, arch: 'deeplabv3plus' }, [32, 48], factory);
    const { model, layers } = refocusSegmenter(plain, { mapK: 3, seed: 5 });
    expect(layers).toHaveLength(5); // backbone only by default
    const x = tf.randomNormal([1, 32, 48, 3], 0, 1, 'float32', 9);
    const report = await fuseCheck({ model, spec: { ...spec, arch: 'deeplabv3plus', refconv: { mapK: 3, aspp: false, layers } } }, { inputSize: [32, 48], factory });
    expect(report.identical).toBe(true);
    const a = (plain.predict(x) as tf.Tensor[])[0]!;
    const b = (model.predict(x) as tf.Tensor[])[0]!;
    expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBeGreaterThan(1e-3);
    expect(countFlops(plain)).toBe(report.flops.plain);
    expect(countParams(plain)).toBe(report.params.plain);
  });
});
