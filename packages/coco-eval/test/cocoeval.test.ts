import { describe, expect, it } from 'vitest';
import { COCO, COCOeval, Params, pyFixed, meanValid } from '../src/index.js';
import { expectMatchesReference, fixture, FIX, runEval, type RefEval } from './helpers.js';

const evals = fixture<Record<string, RefEval>>('synthetic_evals.json');
const gt = new COCO(FIX + 'synthetic_gt.json');

describe('COCOeval against pycocotools on synthetic data', () => {
  const files: Record<string, string> = {
    bbox: 'synthetic_dt_bbox.json',
    segm: 'synthetic_dt_segm.json',
    bbox_agnostic: 'synthetic_dt_bbox.json',
    bbox_subset: 'synthetic_dt_bbox.json',
    segm_as_bbox: 'synthetic_dt_segm.json',
  };
  for (const [name, file] of Object.entries(files)) {
    it(`${name}: 12 stats to 1e-12, table, recall, precision, per-category AP, evalImgs`, () => {
      const ref = evals[name]!;
      const { E, lines } = runEval(gt, file, ref);
      expectMatchesReference(E, lines, ref);
    });
  }

  it('the data covers crowd, every area range, empty images, >100 dets, duplicates, gt id 0', () => {
    const ds = fixture('synthetic_gt.json');
    const anns = ds.annotations as any[];
    expect(anns.some((a) => a.iscrowd === 1 && Array.isArray(a.segmentation.counts))).toBe(true);
    expect(anns.some((a) => a.area < 32 ** 2)).toBe(true);
    expect(anns.some((a) => a.area > 32 ** 2 && a.area < 96 ** 2)).toBe(true);
    expect(anns.some((a) => a.area > 96 ** 2)).toBe(true);
    expect(anns.some((a) => a.id === 0)).toBe(true);
    const withAnns = new Set(anns.map((a) => a.image_id));
    expect((ds.images as any[]).some((im) => !withAnns.has(im.id))).toBe(true);
    const dts = fixture<any[]>('synthetic_dt_bbox.json');
    const perImage = new Map<number, number>();
    for (const d of dts) perImage.set(d.image_id, (perImage.get(d.image_id) ?? 0) + 1);
    expect(Math.max(...perImage.values())).toBeGreaterThan(100);
  });
});

describe('COCOeval against pycocotools on hand-made corner cases', () => {
  // crowd-only image, a category without gt, IoU exactly .5 and .75, areas exactly 32² and 96²,
  // score ties within and across images, duplicate gts and detections
  const edge = fixture<Record<string, RefEval>>('edge_evals.json');
  const egt = new COCO(FIX + 'edge_gt.json');
  for (const name of Object.keys(edge)) {
    it(`${name}: stats, table, recall, precision, per-category, evalImgs`, () => {
      const ref = edge[name]!;
      const { E, lines } = runEval(egt, 'edge_dt.json', ref);
      expectMatchesReference(E, lines, ref);
    });
  }
});

describe('keypoint evaluation (OKS) against pycocotools', () => {
  // 17 person keypoints, gts without visible keypoints (box-distance rule), num_keypoints 0, crowd
  const kev = fixture<Record<string, RefEval>>('keypoints_evals.json');
  const kgt = new COCO(FIX + 'keypoints_gt.json');
  for (const name of Object.keys(kev)) {
    it(`${name}: the 10 stats, table, recall, precision, evalImgs`, () => {
      const ref = kev[name]!;
      const { E, lines } = runEval(kgt, 'keypoints_dt.json', ref);
      expectMatchesReference(E, lines, ref);
    });
  }
});

describe('Params', () => {
  it('thresholds are bit-identical to numpy.linspace as pycocotools builds them', () => {
    const meta = fixture('meta.json');
    const p = new Params('bbox');
    expect(p.iouThrs).toEqual(meta.iouThrs);
    expect(p.recThrs).toEqual(meta.recThrs);
    expect(p.iouThrs.indexOf(0.75)).toBe(5);
  });
  it('rejects unknown iou types', () => {
    expect(() => new Params('oks' as any)).toThrow(/iouType/);
  });
});

describe('summary helpers', () => {
  it("formats like Python's '{:0.3f}', ties to even", () => {
    expect(pyFixed(0.0625, 3)).toBe('0.062');
    expect(pyFixed(0.1875, 3)).toBe('0.188');
    expect(pyFixed(-1, 3)).toBe('-1.000');
    expect(pyFixed(0.5, 2)).toBe('0.50');
    expect(pyFixed(0.95, 2)).toBe('0.95');
    expect(pyFixed(0.12345, 3)).toBe('0.123');
  });
  it('mean ignores -1 entries and is -1 when none is valid', () => {
    expect(meanValid([-1, -1])).toBe(-1);
    expect(meanValid([-1, 0.5, 0.25])).toBe(0.375);
  });
});

describe('hand-computed evaluation', () => {
  // one image, one category: two gts, three detections
  const dataset = {
    images: [{ id: 1, height: 100, width: 100 }],
    categories: [{ id: 5, name: 'thing' }],
    annotations: [
      { id: 1, image_id: 1, category_id: 5, bbox: [0, 0, 10, 10], area: 100, iscrowd: 0 },
      { id: 2, image_id: 1, category_id: 5, bbox: [50, 50, 20, 20], area: 400, iscrowd: 0 },
    ],
  };
  it('a perfect match, a duplicate and a miss give AP@.5 = 0.5 * (1 + ...) as computed by hand', () => {
    const g = new COCO(dataset as any);
    const dt = g.loadRes([
      { image_id: 1, category_id: 5, bbox: [0, 0, 10, 10], score: 0.9 },
      { image_id: 1, category_id: 5, bbox: [0, 0, 10, 10], score: 0.8 }, // duplicate: false positive
    ]);
    const E = new COCOeval(g, dt, 'bbox');
    E.evaluate();
    E.accumulate();
    const s = E.summarize({ log: null });
    // recall reaches 0.5 with precision 1 at the first detection: thresholds 0..0.5 (51 of 101) get 1
    expect(s[1]).toBeCloseTo(51 / 101, 15);
    expect(s[0]).toBeCloseTo(51 / 101, 15);
    expect(s[8]).toBe(0.5);
    expect(s[6]).toBe(0.5);
  });
  it('does not mutate the caller objects', () => {
    const withSegm = JSON.parse(JSON.stringify(dataset));
    withSegm.annotations[0].segmentation = [[0, 0, 10, 0, 10, 10, 0, 10]];
    withSegm.annotations[1].segmentation = { size: [100, 100], counts: [5050, 20, 80, 20, 80, 20, 4730] };
    const copy = JSON.parse(JSON.stringify(withSegm));
    const g = new COCO(withSegm);
    const res = [{ image_id: 1, category_id: 5, bbox: [0, 0, 10, 10], score: 0.9 }];
    const resCopy = JSON.parse(JSON.stringify(res));
    const E = new COCOeval(g, g.loadRes(res), 'segm');
    E.evaluate();
    E.accumulate();
    E.summarize({ log: null });
    expect(withSegm).toEqual(copy);
    expect(res).toEqual(resCopy);
  });
  it('an empty result list fails clearly unless allowed, then scores 0', () => {
    const g = new COCO(dataset as any);
    expect(() => g.loadRes([])).toThrow(/empty/);
    const E = new COCOeval(g, g.loadRes([], { allowEmpty: true }), 'bbox');
    E.evaluate();
    E.accumulate();
    const s = E.summarize({ log: null });
    expect(s.slice(0, 3)).toEqual([0, 0, 0]);
    expect(s[3]).toBe(0); // the small gt
    expect(s[5]).toBe(-1); // no large gt
  });
  it('summarize before accumulate fails clearly', () => {
    const g = new COCO(dataset as any);
    const E = new COCOeval(g, g.loadRes([{ image_id: 1, category_id: 5, bbox: [0, 0, 1, 1], score: 1 }]), 'bbox');
    expect(() => E.accumulate()).toThrow(/evaluate/);
    E.evaluate();
    expect(() => E.summarize()).toThrow(/accumulate/);
  });
  it('a gt without iscrowd or area fails naming the annotation', () => {
    const bad = JSON.parse(JSON.stringify(dataset));
    delete bad.annotations[1].iscrowd;
    const g = new COCO(bad);
    const E = new COCOeval(g, g.loadRes([{ image_id: 1, category_id: 5, bbox: [0, 0, 1, 1], score: 1 }]), 'bbox');
    expect(() => E.evaluate()).toThrow(/annotation 2 has no 'iscrowd'/);
  });
});
