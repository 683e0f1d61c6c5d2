/**
 * CamVid, SegNet tutorial version: `train.txt` / `val.txt` (/ `test.txt`) beside `train/`,
 * `trainannot/`, ...; masks hold class ids 0..10 and 11 = "Unlabelled" (void, read as ignore).
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD, readLines, type DatasetInfo, type SegSample } from './dataset.js';

/** CamVid (SegNet tutorial version) class order; raw id 11 is "Unlabelled" (void). */
export const CAMVID_CLASSES = [
  'Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree', 'SignSymbol', 'Fence', 'Car', 'Pedestrian', 'Bicyclist',
] as const;

const CAMVID_COLOURS: [number, number, number][] = [
  [128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222], [128, 128, 0], [192, 128, 128],
  [64, 64, 128], [64, 0, 128], [64, 64, 0], [0, 128, 192],
];

/** Class names, palette and normalisation of CamVid. */
export const CAMVID_INFO: DatasetInfo = { format: 'camvid', classNames: CAMVID_CLASSES, palette: CAMVID_COLOURS, mean: IMAGENET_MEAN, std: IMAGENET_STD };

/** Fills a raw -> train id table: 0..10 are classes, 11 (void) is ignore. */
export function camvidLabelTable(t: Int16Array): void {
  for (let c = 0; c < 11; c++) t[c] = c;
  t[11] = IGNORE_INDEX;
}

/**
 * CamVid (SegNet tutorial layout): `<split>.txt` lines `…/train/X.png …/trainannot/X.png`,
 * resolved by their last two path parts against `root`.
 */
export function listCamVid(root: string, split: string): SegSample[] {
  const list = join(root, `${split}.txt`);
  if (!existsSync(list)) throw new Error(`CamVid split list ${list} not found (expected train.txt / val.txt beside train/ and trainannot/)`);
  return readLines(list).map((line, i) => {
    const parts = line.split(/\s+/);
    if (parts.length !== 2) throw new Error(`${list}:${i + 1}: expected 'image mask', got '${line}'`);
    const [image, mask] = parts.map((p) => join(root, ...p.split('/').filter(Boolean).slice(-2))) as [string, string];
    return { id: basename(image).replace(/\.[^.]+$/, ''), image, mask, maskKind: 'camvid' as const };
  });
}
