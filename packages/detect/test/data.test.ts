import { sharedDataset } from '@refconv/engine';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import {
  batchImages,
  openDataset,
  parseVocXml,
  prepareImage,
  readCocoDataset,
  resizedSize,
  toCocoGroundTruth,
  trainingTargets,
  transformBoxes,
} from '../src/index.js';

const BCCD = new URL('../../../datasets/bccd', import.meta.url).pathname;
const COCO128 = sharedDataset('coco128');

describe('PASCAL VOC (BCCD shipped in datasets/bccd)', () => {
  it('reads all splits and reports the two degenerate boxes instead of crashing', () => {
    const all = ['train', 'val', 'test'].map((split) => openDataset(BCCD, { split }));
    expect(all.map((d) => d.records.length)).toEqual([205, 87, 72]);
    expect(all[0]!.categories.names).toEqual(['Platelets', 'RBC', 'WBC']);
    const warnings = all.flatMap((d) => d.warnings);
    const degenerate = warnings.filter((w) => w.includes('degenerate'));
    expect(degenerate).toHaveLength(2);
    expect(degenerate.join('\n')).toMatch(/BloodImage_00338\.xml.*\[504, 337, 504, 337\]/);
    const boxes = all.reduce((s, d) => s + d.records.reduce((t, r) => t + r.labels.length, 0), 0);
    expect(boxes).toBe(4888 - 2);
  });

  it('parses a hand-written annotation and rejects a non-VOC file', () => {
    const xml = `<annotation><filename>a.jpg</filename><size><width>10</width><height>8</height></size>
      <object><name>cat</name><difficult>1</difficult><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>5</xmax><ymax>7</ymax></bndbox></object></annotation>`;
    expect(parseVocXml(xml, 'a.xml')).toEqual({ filename: 'a.jpg', width: 10, height: 8, objects: [{ name: 'cat', box: [1, 2, 5, 7], difficult: true }] });
    expect(() => parseVocXml('<html/>', 'b.xml')).toThrow(/b\.xml: not a VOC annotation/);
    expect(() => parseVocXml('<annotation><size><width>x</width></size></annotation>', 'c.xml')).toThrow(/c\.xml/);
  });

  it('COCO ground truth from VOC keeps categories and xywh boxes', () => {
    const ds = openDataset(BCCD, { split: 'test' });
    const gt = toCocoGroundTruth(ds);
    expect(gt.images).toHaveLength(72);
    expect(gt.categories).toEqual([
      { id: 1, name: 'Platelets' },
      { id: 2, name: 'RBC' },
      { id: 3, name: 'WBC' },
    ]);
    const r = ds.records[0]!;
    const first = gt.annotations[0]!;
    expect(first.bbox).toEqual([r.boxes[0], r.boxes[1], r.boxes[2]! - r.boxes[0]!, r.boxes[3]! - r.boxes[1]!]);
  });
});

describe('COCO (coco128)', () => {
  it('maps 80 category ids to contiguous labels and keeps crowd flags', () => {
    const ds = openDataset(COCO128, { split: 'train2017' });
    expect(ds.records).toHaveLength(128);
    expect(ds.categories.ids).toHaveLength(80);
    expect(ds.categories.ids[0]).toBe(1);
    expect(ds.categories.ids[79]).toBe(90);
    const crowd = ds.records.reduce((s, r) => s + r.iscrowd.reduce((a, b) => a + b, 0), 0);
    expect(crowd).toBe(10);
    const total = ds.records.reduce((s, r) => s + r.labels.length, 0);
    const train = ds.records.reduce((s, r) => s + trainingTargets(r).labels.length, 0);
    expect(total - train).toBe(10);
    expect(Math.max(...ds.records.flatMap((r) => Array.from(r.labels)))).toBeLessThan(80);
  });

  it('malformed JSON and missing files are clear errors', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'detect-'));
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, '{"images": [');
    expect(() => readCocoDataset({ annotations: bad, images: dir })).toThrow(/bad\.json: malformed JSON/);
    fs.writeFileSync(bad, '{"images": []}');
    expect(() => readCocoDataset({ annotations: bad, images: dir })).toThrow(/bad\.json.*"annotations"/);
    expect(() => openDataset(path.join(dir, 'nope'), { split: 'train' })).toThrow(/does not exist/);
    expect(() => openDataset(BCCD, { split: 'nosuchsplit' })).toThrow(/nosuchsplit\.txt does not exist/);
  });
});

describe('transforms', () => {
  it('resize rule: shorter side to minSize, longer capped by maxSize', () => {
    expect(resizedSize(480, 640, { minSize: 320, maxSize: 1000 })).toEqual([320, 426]);
    expect(resizedSize(480, 640, { minSize: 320, maxSize: 400 })).toEqual([300, 400]);
  });

  it('boxes scale per axis, flip mirrors x, and are clipped', () => {
    const b = new Float32Array([10, 20, 30, 40, -5, 0, 250, 120]);
    expect(Array.from(transformBoxes(b, [100, 200], [50, 100]))).toEqual([5, 10, 15, 20, 0, 0, 100, 50]);
    expect(Array.from(transformBoxes(b, [100, 200], [50, 100], true))).toEqual([85, 10, 95, 20, 0, 0, 100, 50]);
  });

  it('a real image: resized, flipped pixels match, batched with padding to /32', async () => {
    const r = openDataset(BCCD, { split: 'test' }).records[0]!;
    const a = await prepareImage(r.file, r.boxes, { minSize: 100, maxSize: 1000 });
    const f = await prepareImage(r.file, r.boxes, { minSize: 100, maxSize: 1000, flip: true });
    expect([a.height, a.width]).toEqual([100, 133]);
    // pixel (y, x) of the flipped image is pixel (y, W-1-x) of the plain one
    for (const [y, x] of [[0, 0], [50, 7], [99, 132]] as const) {
      for (let c = 0; c < 3; c++) expect(f.pixels[(y * 133 + x) * 3 + c]).toBeCloseTo(a.pixels[(y * 133 + (132 - x)) * 3 + c]!, 5);
    }
    const b = await prepareImage(r.file, r.boxes, { minSize: 64, maxSize: 1000 });
    const batch = batchImages([a, b]);
    expect(batch.shape).toEqual([2, 128, 160, 3]);
    const d = batch.arraySync();
    expect(d[1]![63]![84]![0]).toBeCloseTo(b.pixels[(63 * 85 + 84) * 3]!, 5);
    expect(d[1]![64]![0]).toEqual([0, 0, 0]);
    expect(d[0]![0]![140]).toEqual([0, 0, 0]);
    batch.dispose();
  });

  it('a corrupt image names the file', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'detect-')), 'broken.jpg');
    fs.writeFileSync(file, Buffer.from([0xff, 0xd8, 0xff, 0x00, 0x01]));
    await expect(prepareImage(file, new Float32Array(), { minSize: 32, maxSize: 64 })).rejects.toThrow(/broken\.jpg/);
    void sharp;
  });
});
