import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createModel, exportTorchWeights } from '@refconv/backbones';
import { describe, expect, it } from 'vitest';
import { RetinaNet, createBackbone } from '../src/index.js';

describe('backbones', () => {
  it('a @refconv/backbones ResNet-18 gives C2..C5 to the detector and loads torchvision-named weights', () => {
    const src = createModel('resnet18', { features: true, width: 0.25, inputSize: 64 });
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'detect-bb-')), 'r18.safetensors');
    exportTorchWeights(src, file);
    const bb = createBackbone({ arch: 'resnet18', width: 0.25, weights: file });
    expect(bb.outputs.map((o) => o.shape[3])).toEqual([16, 32, 64, 128]);
    src.weights.forEach((w, i) => expect(bb.weights[i]!.read().dataSync()).toEqual(w.read().dataSync()));
    const det = RetinaNet.create({ numClasses: 3, backbone: { arch: 'resnet18', width: 0.25 }, fpnChannels: 8, headConvs: 1 }, bb);
    expect(det.model.outputs).toHaveLength(10);
    expect(() => createBackbone({ arch: 'tiny', weights: file })).toThrow(/no pretrained weights/);
    expect(() => createBackbone({ arch: 'nonet' })).toThrow(/unknown architecture 'nonet'/);
  });
});
