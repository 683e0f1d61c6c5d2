/**
 * PASCAL VOC 2012 segmentation: `ImageSets/Segmentation/<split>.txt`, `JPEGImages/<id>.jpg`,
 * `SegmentationClass/<id>.png` (palette PNGs holding class ids 0..20, 255 = ignore).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { IMAGENET_MEAN, IMAGENET_STD, readLines, type DatasetInfo, type SegSample } from './dataset.js';

/** The standard PASCAL VOC colour map (bit-interleaved index -> RGB). */
export function vocColourMap(n = 256): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let i = 0; i < n; i++) {
    let r = 0;
    let g = 0;
    let b = 0;
    let c = i;
    for (let j = 0; j < 8; j++) {
      r |= (c & 1) << (7 - j);
      g |= ((c >> 1) & 1) << (7 - j);
      b |= ((c >> 2) & 1) << (7 - j);
      c >>= 3;
    }
    out.push([r, g, b]);
  }
  return out;
}

export const VOC_CLASSES = [
  'background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
  'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor',
] as const;

/** Class names, palette and normalisation of VOC. */
export const VOC_INFO: DatasetInfo = { format: 'voc', classNames: VOC_CLASSES, palette: vocColourMap(21), mean: IMAGENET_MEAN, std: IMAGENET_STD };

/** Raw VOC mask value -> train id (`-1` = not a class id: an error); 255 stays ignore. */
export function vocLabelTable(t: Int16Array): void {
  for (let c = 0; c < 21; c++) t[c] = c;
}

/**
 * PASCAL VOC 2012: `ImageSets/Segmentation/<split>.txt`, `JPEGImages/<id>.jpg`,
 * `SegmentationClass/<id>.png`. The SBD-augmented list (`train_aug.txt`, 10,582 ids) takes
 * masks from `SegmentationClassAug/` when that folder exists (the usual conversion of SBD
 * to index PNGs), else from `SegmentationClass/`.
 * `root` may be `VOCdevkit/VOC2012` or a folder containing `VOCdevkit/VOC2012`.
 */
export function listVoc(root: string, split: string): SegSample[] {
  const base = existsSync(join(root, 'VOCdevkit', 'VOC2012')) ? join(root, 'VOCdevkit', 'VOC2012') : root;
  const list = join(base, 'ImageSets', 'Segmentation', `${split}.txt`);
  if (!existsSync(list)) throw new Error(`VOC split list ${list} not found (expected VOCdevkit/VOC2012 layout)`);
  const augDir = join(base, 'SegmentationClassAug');
  const maskDir = split === 'train_aug' && existsSync(augDir) ? augDir : join(base, 'SegmentationClass');
  return readLines(list).map((line) => {
    const id = line.split(/\s+/)[0]!;
    return { id, image: join(base, 'JPEGImages', `${id}.jpg`), mask: join(maskDir, `${id}.png`), maskKind: 'voc' as const };
  });
}
