/**
 * Cityscapes: `leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png` with the fine annotations in
 * `gtFine/<split>/<city>/` (`*_labelTrainIds.png` if present, else `*_labelIds.png` mapped with
 * the official 34 -> 19 table of cityscapesScripts `labels.py`).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { IMAGENET_MEAN, IMAGENET_STD, type DatasetInfo, type SegSample } from './dataset.js';

/**
 * Cityscapes labels as in cityscapesScripts `labels.py`: `[labelId, name, trainId]`
 * (trainId 255 = ignored in evaluation).
 */
export const CITYSCAPES_LABELS: readonly (readonly [number, string, number])[] = [
  [0, 'unlabeled', 255], [1, 'ego vehicle', 255], [2, 'rectification border', 255], [3, 'out of roi', 255],
  [4, 'static', 255], [5, 'dynamic', 255], [6, 'ground', 255], [7, 'road', 0], [8, 'sidewalk', 1],
  [9, 'parking', 255], [10, 'rail track', 255], [11, 'building', 2], [12, 'wall', 3], [13, 'fence', 4],
  [14, 'guard rail', 255], [15, 'bridge', 255], [16, 'tunnel', 255], [17, 'pole', 5], [18, 'polegroup', 255],
  [19, 'traffic light', 6], [20, 'traffic sign', 7], [21, 'vegetation', 8], [22, 'terrain', 9], [23, 'sky', 10],
  [24, 'person', 11], [25, 'rider', 12], [26, 'car', 13], [27, 'truck', 14], [28, 'bus', 15], [29, 'caravan', 255],
  [30, 'trailer', 255], [31, 'train', 16], [32, 'motorcycle', 17], [33, 'bicycle', 18],
];

export const CITYSCAPES_CLASSES = [
  'road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light', 'traffic sign', 'vegetation',
  'terrain', 'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle',
] as const;

const CITYSCAPES_COLOURS: [number, number, number][] = [
  [128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156], [190, 153, 153], [153, 153, 153], [250, 170, 30],
  [220, 220, 0], [107, 142, 35], [152, 251, 152], [70, 130, 180], [220, 20, 60], [255, 0, 0], [0, 0, 142],
  [0, 0, 70], [0, 60, 100], [0, 80, 100], [0, 0, 230], [119, 11, 32],
];

/** Class names, palette and normalisation of Cityscapes. */
export const CITYSCAPES_INFO: DatasetInfo = { format: 'cityscapes', classNames: CITYSCAPES_CLASSES, palette: CITYSCAPES_COLOURS, mean: IMAGENET_MEAN, std: IMAGENET_STD };

/** Fills a raw -> train id table for `*_labelTrainIds.png` (`trainIds`) or `*_labelIds.png` masks. */
export function cityscapesLabelTable(t: Int16Array, kind: 'labelIds' | 'trainIds'): void {
  if (kind === 'trainIds') for (let c = 0; c < 19; c++) t[c] = c;
  else for (const [id, , train] of CITYSCAPES_LABELS) t[id] = train; // trainId 255 is IGNORE_INDEX
}

/**
 * Cityscapes: `leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png` with
 * `gtFine/<split>/<city>/<stem>_gtFine_labelTrainIds.png` when present (already train ids),
 * else `<stem>_gtFine_labelIds.png` mapped with the official table.
 */
export function listCityscapes(root: string, split: string): SegSample[] {
  const imgRoot = join(root, 'leftImg8bit', split);
  if (!existsSync(imgRoot)) throw new Error(`Cityscapes folder ${imgRoot} not found (expected leftImg8bit/<split>/<city>/)`);
  const out: SegSample[] = [];
  for (const city of readdirSync(imgRoot).sort()) {
    const cityDir = join(imgRoot, city);
    if (!statSync(cityDir).isDirectory()) continue;
    for (const file of readdirSync(cityDir).sort()) {
      if (!file.endsWith('_leftImg8bit.png')) continue;
      const stem = file.slice(0, -'_leftImg8bit.png'.length);
      const gtDir = join(root, 'gtFine', split, city);
      const trainIds = join(gtDir, `${stem}_gtFine_labelTrainIds.png`);
      const labelIds = join(gtDir, `${stem}_gtFine_labelIds.png`);
      if (existsSync(trainIds)) out.push({ id: stem, image: join(cityDir, file), mask: trainIds, maskKind: 'cityscapes-trainIds' });
      else if (existsSync(labelIds)) out.push({ id: stem, image: join(cityDir, file), mask: labelIds, maskKind: 'cityscapes-labelIds' });
      else throw new Error(`Cityscapes image ${join(cityDir, file)} has no mask: neither ${trainIds} nor ${labelIds} exists`);
    }
  }
  return out;
}
