import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COCO, maskUtils } from '../src/index.js';
import { COCO128_GT, expectMatchesReference, fixture, runEval, type RefEval } from './helpers.js';

const evals = fixture<Record<string, RefEval> & { gtSha256: string }>('coco128_evals.json');

describe('real COCO annotations (coco128) with perturbed detections', () => {
  it('uses the same ground-truth file pycocotools saw', () => {
    const sha = createHash('sha256').update(readFileSync(COCO128_GT)).digest('hex');
    expect(sha).toBe(evals.gtSha256);
  });
  const gt = new COCO(COCO128_GT);
  const cases: [string, string][] = [
    ['bbox', 'coco128_dt_bbox.json'],
    ['segm', 'coco128_dt_segm.json'],
    ['bbox_area_custom', 'coco128_dt_bbox.json'],
  ];
  for (const [name, file] of cases) {
    it(`${name}: every stat matches pycocotools to 1e-12`, () => {
      const ref = evals[name] as RefEval;
      const { E, lines } = runEval(gt, file, ref);
      expectMatchesReference(E, lines, ref);
    });
  }
  it('annToRLE of polygons and crowd RLEs gives the same strings, areas and boxes', () => {
    const ref = fixture('coco128_ann_rles.json');
    for (const r of ref.rles) {
      const ann = gt.loadAnns(r.id)[0]!;
      const rle = gt.annToRLE(ann);
      expect(maskUtils.rleToString(rle)).toBe(r.counts);
      expect(maskUtils.rleArea(rle)).toBe(r.area);
      expect(maskUtils.rleToBbox(rle)).toEqual(r.bbox);
    }
    expect(ref.rles.some((r: any) => gt.loadAnns(r.id)[0]!.iscrowd === 1)).toBe(true);
  });
});
