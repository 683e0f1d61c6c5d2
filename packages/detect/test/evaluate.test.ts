import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { cocoEvaluate, detectionsSvg, openDataset, toCocoResults, writeVisualization, type Detections } from '../src/index.js';

const BCCD = new URL('../../../datasets/bccd', import.meta.url).pathname;

describe('COCO evaluation glue', () => {
  it('results are xywh with dataset category ids', () => {
    const ds = openDataset(BCCD, { split: 'test' });
    const d: Detections = { boxes: new Float32Array([10, 20, 40, 60]), scores: Float32Array.from([0.5]), labels: Int32Array.from([2]) };
    expect(toCocoResults(ds.records[3]!, d, ds.categories.ids)).toEqual([{ image_id: ds.records[3]!.imageId, category_id: 3, bbox: [10, 20, 30, 40], score: 0.5 }]);
  });

  it('ground truth given back as detections scores AP = AR = 1; an empty result set scores 0', () => {
    const ds = openDataset(BCCD, { split: 'test' });
    ds.records = ds.records.slice(0, 6);
    const perfect = ds.records.map((r) => ({ boxes: r.boxes, scores: new Float32Array(r.labels.length).fill(1), labels: r.labels }));
    const { stats } = cocoEvaluate(ds, perfect);
    expect(stats[0]).toBeCloseTo(1, 6);
    expect(stats[1]).toBeCloseTo(1, 6);
    expect(stats[8]).toBeCloseTo(1, 6);
    const empty = ds.records.map(() => ({ boxes: new Float32Array(0), scores: new Float32Array(0), labels: new Int32Array(0) }));
    expect(cocoEvaluate(ds, empty).stats[0]).toBe(0);
    // the right boxes with the wrong class are all false positives
    const wrongClass = perfect.map((p) => ({ ...p, labels: p.labels.map((l) => (l + 1) % 3) }));
    expect(cocoEvaluate(ds, wrongClass).stats[1]).toBe(0);
  });
});

describe('visualization', () => {
  it('draws a box outline in the class colour and a label', async () => {
    const d: Detections = { boxes: new Float32Array([20, 30, 120, 90, 0, 0, 5, 5]), scores: Float32Array.from([0.9, 0.1]), labels: Int32Array.from([0, 1]) };
    const svg = detectionsSvg(200, 100, d, ['cell', 'other'], 0.3);
    expect(svg).toContain('cell 0.90');
    expect(svg).not.toContain('other');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'detect-vis-'));
    const img = path.join(dir, 'white.png');
    await sharp({ create: { width: 200, height: 100, channels: 3, background: '#ffffff' } }).png().toFile(img);
    const file = await writeVisualization({ imageId: 1, file: img, width: 200, height: 100, boxes: new Float32Array(), labels: new Int32Array(), iscrowd: new Uint8Array(), areas: new Float32Array() }, d, ['cell', 'other'], path.join(dir, 'out'));
    const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const px = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3));
    const [r, g, b] = px(70, 90); // bottom edge of the box: palette[0] = #e6194b
    expect(r).toBeGreaterThan(180);
    expect(g).toBeLessThan(90);
    expect(b).toBeLessThan(130);
    expect(px(70, 60)).toEqual([255, 255, 255]); // inside stays untouched
  });
});
