/** Evaluation parameters, pycocotools `Params` (detection settings). */

/** What is compared: boxes or masks. */
export type IouType = 'bbox' | 'segm';

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

/** Parameters driving {@link COCOeval}; defaults are pycocotools' detection defaults. */
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
  /** box or mask IoU */
  iouType: IouType;

  constructor(iouType: IouType = 'segm') {
    if (iouType !== 'bbox' && iouType !== 'segm') {
      throw new Error(`iouType must be 'bbox' or 'segm' (keypoints are not supported), got '${String(iouType)}'`);
    }
    this.iouType = iouType;
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
    return p;
  }
}
