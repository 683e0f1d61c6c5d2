import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COCO } from '../src/index.js';

const dataset = {
  images: [
    { id: 10, height: 50, width: 60 },
    { id: 20, height: 50, width: 60 },
    { id: 30, height: 50, width: 60 },
  ],
  categories: [
    { id: 1, name: 'cat', supercategory: 'animal' },
    { id: 4, name: 'dog', supercategory: 'animal' },
    { id: 9, name: 'car', supercategory: 'vehicle' },
  ],
  annotations: [
    { id: 101, image_id: 10, category_id: 1, bbox: [0, 0, 5, 5], area: 25, iscrowd: 0 },
    { id: 102, image_id: 10, category_id: 4, bbox: [0, 0, 10, 10], area: 100, iscrowd: 1 },
    { id: 103, image_id: 20, category_id: 1, bbox: [0, 0, 20, 20], area: 400, iscrowd: 0 },
    { id: 104, image_id: 20, category_id: 9, bbox: [0, 0, 2, 2], area: 4, iscrowd: 0 },
    { id: 105, image_id: 10, category_id: 9, bbox: [1, 1, 3, 3], area: 9, iscrowd: 0 },
  ],
};

describe('COCO index and filters (semantics of pycocotools, computed by hand)', () => {
  const coco = new COCO(dataset as any);
  it('getAnnIds', () => {
    expect(coco.getAnnIds()).toEqual([101, 102, 103, 104, 105]);
    expect(coco.getAnnIds({ imgIds: [20, 10] })).toEqual([103, 104, 101, 102, 105]);
    expect(coco.getAnnIds({ imgIds: 10, catIds: [9, 1] })).toEqual([101, 105]);
    expect(coco.getAnnIds({ areaRng: [9, 400] })).toEqual([101, 102]); // strict bounds: 9 and 400 are out
    expect(coco.getAnnIds({ iscrowd: true })).toEqual([102]);
    expect(coco.getAnnIds({ iscrowd: 0, catIds: 1 })).toEqual([101, 103]);
    expect(coco.getAnnIds({ imgIds: [999] })).toEqual([]);
  });
  it('getCatIds', () => {
    expect(coco.getCatIds()).toEqual([1, 4, 9]);
    expect(coco.getCatIds({ supNms: 'animal' })).toEqual([1, 4]);
    expect(coco.getCatIds({ catNms: ['car', 'dog'] })).toEqual([4, 9]);
    expect(coco.getCatIds({ supNms: ['animal'], catIds: [4, 9] })).toEqual([4]);
  });
  it('getImgIds', () => {
    expect(coco.getImgIds()).toEqual([10, 20, 30]);
    expect(coco.getImgIds({ catIds: [1] })).toEqual([10, 20]);
    expect(coco.getImgIds({ catIds: [1, 9] })).toEqual([10, 20]);
    expect(coco.getImgIds({ catIds: [4, 9] })).toEqual([10]);
    expect(coco.getImgIds({ imgIds: [20, 30], catIds: [1] })).toEqual([20]);
  });
  it('loadAnns / loadCats / loadImgs return the objects and name missing ids', () => {
    expect(coco.loadAnns([105])[0]).toBe(dataset.annotations[4]);
    expect(coco.loadCats(4)[0]!.name).toBe('dog');
    expect(coco.loadImgs([30])[0]!.id).toBe(30);
    expect(() => coco.loadAnns(7)).toThrow(/no annotation with id 7/);
  });
});

describe('loadRes', () => {
  const coco = new COCO(dataset as any);
  it('bbox results get ids 1..N, area w*h, iscrowd 0 and a box polygon', () => {
    const res = coco.loadRes([
      { image_id: 10, category_id: 1, bbox: [1, 2, 3, 4], score: 0.5 },
      { image_id: 20, category_id: 9, bbox: [0, 0, 2.5, 2], score: 0.7 },
    ]);
    const anns = res.loadAnns(res.getAnnIds());
    expect(anns.map((a) => a.id)).toEqual([1, 2]);
    expect(anns[0]).toMatchObject({ area: 12, iscrowd: 0, segmentation: [[1, 2, 1, 6, 4, 6, 4, 2]] });
    expect(anns[1]!.area).toBe(5);
    expect(res.getCatIds()).toEqual([1, 4, 9]);
  });
  it('segm results get area and bbox from the mask', () => {
    const res = coco.loadRes([{ image_id: 10, category_id: 1, score: 1, segmentation: { size: [3, 3], counts: '135' } }]);
    const a = res.loadAnns(1)[0]!;
    expect(a.area).toBe(3);
    expect(a.bbox).toEqual([0, 0, 2, 3]);
  });
  it('bad results fail with the result named', () => {
    expect(() => coco.loadRes([{ image_id: 77, category_id: 1, bbox: [0, 0, 1, 1], score: 1 }])).toThrow(/results\[0\]: image_id 77 is not an image/);
    expect(() => coco.loadRes([{ image_id: 10, category_id: 1, bbox: [0, 0, 1, 1] } as any])).toThrow(/results\[0\]: 'score'/);
    expect(() =>
      coco.loadRes([
        { image_id: 10, category_id: 1, bbox: [0, 0, 1, 1], score: 1 },
        { image_id: 10, category_id: 1, bbox: [0, 0, 1], score: 1 },
      ]),
    ).toThrow(/results\[1\]: 'bbox' must be/);
    expect(() => coco.loadRes([{ image_id: 10, category_id: '1', bbox: [0, 0, 1, 1], score: 1 } as any])).toThrow(/category_id/);
    expect(() => coco.loadRes([{ image_id: 10, category_id: 1, score: 1 } as any])).toThrow(/none of a non-empty 'bbox', 'segmentation' or 'keypoints'/);
    expect(() => coco.loadRes({} as any)).toThrow(/JSON array/);
    expect(() => coco.loadRes([{ image_id: 10, category_id: 1, score: 1, segmentation: [[1, 2, 3, 4, 5, 6]] } as any])).toThrow(
      /compressed RLE/,
    );
  });
  it('files: missing, malformed JSON, wrong top-level type', () => {
    const dir = mkdtempSync(join(tmpdir(), 'coco-eval-'));
    writeFileSync(join(dir, 'bad.json'), '{"images": [');
    writeFileSync(join(dir, 'list.json'), '[]');
    expect(() => new COCO(join(dir, 'missing.json'))).toThrow(/cannot read .*missing\.json/);
    expect(() => new COCO(join(dir, 'bad.json'))).toThrow(/bad\.json is not valid JSON/);
    expect(() => new COCO(join(dir, 'list.json'))).toThrow(/list\.json: annotation file must hold a JSON object/);
    expect(() => coco.loadRes(join(dir, 'bad.json'))).toThrow(/bad\.json is not valid JSON/);
  });
  it('ground truth with mistyped fields or duplicate ids fails clearly', () => {
    const bad = JSON.parse(JSON.stringify(dataset));
    bad.annotations[2].bbox = [0, 0, 'x', 1];
    expect(() => new COCO(bad)).toThrow(/annotations\[2\] \(id 103\): 'bbox'/);
    const dup = JSON.parse(JSON.stringify(dataset));
    dup.annotations[1].id = 101;
    expect(() => new COCO(dup)).toThrow(/annotation id 101 appears twice/);
  });
});
