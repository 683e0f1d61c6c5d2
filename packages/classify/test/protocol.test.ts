/**
 * The whole protocol at toy scale in-process: pretrain -> refocus / control -> fuse -> eval,
 * then the report. Checks the RefConv invariants the report relies on.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadCheckpoint } from '@refconv/engine';
import { describe, expect, it } from 'vitest';
import { defaultConfig, type RunConfig } from '../src/config.js';
import { BatchLoader } from '../src/data/loader.js';
import { prepareData, runSeed } from '../src/protocol.js';
import { writeReport } from '../src/report.js';
import { tmpDir, writeTinyFashionMnist } from './helpers.js';

describe('RefConv protocol (toy scale)', () => {
  it('runs every stage; fused = unfused predictions, fused params/FLOPs = baseline; bases stay frozen', async () => {
    const data = tmpDir('cls-proto-data-');
    writeTinyFashionMnist(data, 48, 24);
    const d = defaultConfig();
    const cfg: RunConfig = {
      ...d,
      data,
      out: tmpDir('cls-proto-'),
      width: 0.25,
      trainLimit: undefined,
      pretrain: { ...d.pretrain, epochs: 1, batchSize: 16 },
      finetune: { ...d.finetune, epochs: 1, batchSize: 16, lr: 0.05 },
      workers: 0,
      latencyRuns: 2,
    };
    const p = await prepareData(cfg);
    const loader = new BatchLoader({ batchSize: 16, workers: 0 });
    const r = await runSeed(cfg, 0, p, loader);
    await loader.close();

    const { baseline, control, refconv, fused } = r.models;
    expect(baseline && control && refconv && fused).toBeTruthy();
    expect(fused!.params).toBe(baseline!.params);
    expect(fused!.flops).toBe(baseline!.flops);
    expect(r.fusedPredictionMismatches).toBe(0);
    expect(fused!.top1).toBe(refconv!.top1);
    expect(r.histories.refocus).toHaveLength(1);
    expect(r.histories.control).toHaveLength(1);

    // the refocused model's bases are the baseline kernels, untouched by training
    const base = loadCheckpoint(path.join(cfg.out, 'seed-0', 'pretrain', 'final.safetensors')).weights;
    const ref = loadCheckpoint(path.join(cfg.out, 'seed-0', 'refocus', 'final.safetensors')).weights;
    expect(Array.from(ref.get('layer1.0.conv1/basis')!.data as Float32Array)).toEqual(Array.from(base.get('layer1.0.conv1/kernel')!.data as Float32Array));
    expect(ref.has('layer1.0.conv1/transform')).toBe(true);
    // the control trained the same kernel (so it differs from the baseline)
    const ctl = loadCheckpoint(path.join(cfg.out, 'seed-0', 'control', 'final.safetensors')).weights;
    expect(Array.from(ctl.get('layer1.0.conv1/kernel')!.data as Float32Array)).not.toEqual(Array.from(base.get('layer1.0.conv1/kernel')!.data as Float32Array));

    const report = await writeReport(cfg, [r], 'test', 'toy');
    const md = fs.readFileSync(report, 'utf8');
    for (const row of ['baseline (pretrained)', 'control (equal epochs, plain)', 'RefConv (unfused)', 'RefConv fused', '0 of 24 predictions differ']) expect(md).toContain(row);
    for (const png of ['finetune-val-top1.png', 'pretrain.png']) expect(fs.statSync(path.join(cfg.out, png)).size).toBeGreaterThan(1000);
  }, 240_000);
});
