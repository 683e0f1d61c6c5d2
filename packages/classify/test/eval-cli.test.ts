import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createModel, exportTorchWeights } from '@refconv/backbones';
import { describe, expect, it } from 'vitest';
import { BatchLoader } from '../src/data/loader.js';
import { evaluate } from '../src/evaluate.js';
import { prepareData } from '../src/protocol.js';
import { defaultConfig } from '../src/config.js';
import { tmpDir, writeImage } from './helpers.js';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('classify:eval --torch-weights', () => {
  it('evaluates a PyTorch state dict loaded through @refconv/backbones like the same model in-process', async () => {
    const root = tmpDir('cls-evalcli-');
    for (const [cls, v] of [['a', 30], ['b', 120], ['c', 220]] as const) {
      for (let i = 0; i < 3; i++) {
        await writeImage(path.join(root, 'train', cls, `${i}.png`), v + i, 16);
        await writeImage(path.join(root, 'val', cls, `${i}.png`), v + 10 * i, 16);
      }
    }
    const model = createModel('cifar_resnet20', { numClasses: 3, inputSize: 16, width: 0.25 });
    const file = path.join(root, 'torch.safetensors');
    exportTorchWeights(model, file);

    const cfg = { ...defaultConfig(), data: root, inputSize: 16, evalResize: 16, trainLimit: undefined };
    const p = await prepareData(cfg);
    const loader = new BatchLoader({ batchSize: 4, workers: 0 });
    const expected = await evaluate(model, p.val, loader, p.evalTransform, { classNames: p.data.classNames, progress: false });
    await loader.close();

    const r = spawnSync(process.execPath, ['--conditions=@refconv/source', '--import', 'tsx', 'src/cli/eval.ts',
      '--torch-weights', file, '--arch', 'cifar_resnet20', '--width', '0.25', '--input-size', '16', '--eval-resize', '16', '--data', root, '--workers', '0', '--json'], { cwd: pkg, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim()) as { images: number; top1: number; top5: number; confusion: number[][]; kind: string };
    expect(out.kind).toBe('baseline');
    expect(out.images).toBe(9);
    expect(out.confusion).toEqual(expected.confusion);
    expect(out.top1).toBeCloseTo(expected.top1, 10);

    const both = spawnSync(process.execPath, ['--conditions=@refconv/source', '--import', 'tsx', 'src/cli/eval.ts', '--torch-weights', file], { cwd: pkg, encoding: 'utf8' });
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/--torch-weights needs --arch/);
  }, 120_000);
});
