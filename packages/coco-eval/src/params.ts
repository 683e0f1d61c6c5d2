/** Evaluation parameters, pycocotools `Params` (detection settings). */

/** What is compared: boxes, masks, or keypoints (OKS). */
export type IouType = 'bbox' | 'segm' | 'keypoints';

/** COCO's per-keypoint OKS sigmas for the 17 person keypoints (pycocotools' `kpt_oks_sigmas`). */
export const COCO_KEYPOINT_SIGMAS: number[] = [
  0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89,
].map((v) => v / 10.0);

/**
 * numpy.linspace(start, stop, num) value by value: `i * step + start` with `step = (stop - start) / (num - 1)`
 * and the last value set to `stop`, so thresholds are bit-identical to pycocotools'.
 */
export function linspace(start: number, stop: number, num: number): number[] {
  const out: number[] = [];
  const step = (stop - start) / (num - 1);
  for (let i = 0; i < num; i++) out.push(i * step + start);
  if (num > 1) out[num - 1] = stop;
  return out;
}

/**
 * Parameters driving {@link COCOeval}; defaults are pycocotools' (detection: maxDets 1/10/100 and
 * four area ranges; keypoints: maxDets 20, areas all/medium/large and the COCO OKS sigmas).
 */
export class Params {
  /** images to evaluate (default: all ground-truth images, sorted) */
  imgIds: number[] = [];
  /** categories to evaluate (default: all ground-truth categories, sorted) */
  catIds: number[] = [];
  /** T IoU thresholds, .5:.05:.95 */
  iouThrs: number[] = linspace(0.5, 0.95, Math.round((0.95 - 0.5) / 0.05) + 1);
  /** R recall thresholds, 0:.01:1 */
  recThrs: number[] = linspace(0.0, 1.0, Math.round((1.0 - 0.0) / 0.01) + 1);
  /** M maximum detections per image, ascending */
  maxDets: number[] = [1, 10, 100];
  /** A area ranges `[min, max]` in pixels² */
  areaRng: [number, number][] = [
    [0 ** 2, 1e5 ** 2],
    [0 ** 2, 32 ** 2],
    [32 ** 2, 96 ** 2],
    [96 ** 2, 1e5 ** 2],
  ];
  /** labels of areaRng */
  areaRngLbl: string[] = ['all', 'small', 'medium', 'large'];
  /** evaluate per category (true) or class-agnostic (false) */
  useCats: boolean = true;
  /** per-keypoint OKS sigmas (keypoints only) */
  kptOksSigmas: number[] = [];
  /** box IoU, mask IoU or OKS */
  iouType: IouType;

  constructor(iouType: IouType = 'segm') {
    if (iouType !== 'bbox' && iouType !== 'segm' && iouType !== 'keypoints') {
      throw new Error(`iouType must be 'bbox', 'segm' or 'keypoints', got '${String(iouType)}'`);
    }
    this.iouType = iouType;
    if (iouType === 'keypoints') {
      this.maxDets = [20];
      this.areaRng = [
        [0 ** 2, 1e5 ** 2],
        [32 ** 2, 96 ** 2],
        [96 ** 2, 1e5 ** 2],
      ];
      this.areaRngLbl = ['all', 'medium', 'large'];
      this.kptOksSigmas = [...COCO_KEYPOINT_SIGMAS];
    }
  }

  /** A deep copy. */
  clone(): Params {
    const p = new Params(this.iouType);
    p.imgIds = [...this.imgIds];
    p.catIds = [...this.catIds];
    p.iouThrs = [...this.iouThrs];
    p.recThrs = [...this.recThrs];
    p.maxDets = [...this.maxDets];
    p.areaRng = this.areaRng.map((r) => [r[0], r[1]] as [number, number]);
    p.areaRngLbl = [...this.areaRngLbl];
    p.useCats = this.useCats;
    p.kptOksSigmas = [...this.kptOksSigmas];
    return p;
  }
}
