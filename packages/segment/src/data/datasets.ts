/**
 * Dataset layouts (PASCAL VOC 2012, Cityscapes, CamVid): which image goes with which mask,
 * and how a raw mask value becomes a train id (0..numClasses-1) or the ignore label.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

/** Supported dataset layouts. */
export type DatasetFormat = 'voc' | 'cityscapes' | 'camvid';

/** The ignore label shared by all three datasets after mapping. */
export const IGNORE_INDEX = 255;

/** One image and its label mask. */
export interface SegSample {
  /** Short id (file stem), used for output file names. */
  id: string;
  image: string;
  mask: string;
  /** Which raw-value table applies to this mask (Cityscapes mixes labelIds and labelTrainIds). */
  maskKind: MaskKind;
}

/** How raw mask values are read. */
export type MaskKind = 'voc' | 'cityscapes-labelIds' | 'cityscapes-trainIds' | 'camvid';

/** Class list, colours and raw-value tables of a dataset. */
export interface DatasetInfo {
  format: DatasetFormat;
  classNames: readonly string[];
  /** `[numClasses]` RGB colour per train id, for colourised predictions. */
  palette: readonly (readonly [number, number, number])[];
  /** Default mean/std normalisation (ImageNet, RGB in 0..1). */
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

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

/** CamVid (SegNet tutorial version) class order; raw id 11 is "Unlabelled" (void). */
export const CAMVID_CLASSES = [
  'Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree', 'SignSymbol', 'Fence', 'Car', 'Pedestrian', 'Bicyclist',
] as const;

const CAMVID_COLOURS: [number, number, number][] = [
  [128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222], [128, 128, 0], [192, 128, 128],
  [64, 64, 128], [64, 0, 128], [64, 64, 0], [0, 128, 192],
];

/** Class names, palette and normalisation of each format. */
export const DATASETS: Record<DatasetFormat, DatasetInfo> = {
  voc: { format: 'voc', classNames: VOC_CLASSES, palette: vocColourMap(21), mean: IMAGENET_MEAN, std: IMAGENET_STD },
  cityscapes: { format: 'cityscapes', classNames: CITYSCAPES_CLASSES, palette: CITYSCAPES_COLOURS, mean: IMAGENET_MEAN, std: IMAGENET_STD },
  camvid: { format: 'camvid', classNames: CAMVID_CLASSES, palette: CAMVID_COLOURS, mean: IMAGENET_MEAN, std: IMAGENET_STD },
};

/**
 * Raw mask value -> train id table (`-1` = a value that must not occur: an error).
 */
export function labelTable(kind: MaskKind): Int16Array {
  const t = new Int16Array(256).fill(-1);
  t[IGNORE_INDEX] = IGNORE_INDEX;
  if (kind === 'voc') for (let c = 0; c < 21; c++) t[c] = c;
  else if (kind === 'cityscapes-trainIds') for (let c = 0; c < 19; c++) t[c] = c;
  else if (kind === 'cityscapes-labelIds') for (const [id, , train] of CITYSCAPES_LABELS) t[id] = train;
  else {
    for (let c = 0; c < 11; c++) t[c] = c;
    t[11] = IGNORE_INDEX;
  }
  return t;
}

/** Where the split list lives and which samples it names. */
export interface ListOptions {
  /** Split name: `train`, `val` (all); `trainval` (VOC); `train_aug` (VOC + SBD); `test` where masks exist. */
  split: string;
}

/** Lists the samples of one split of a dataset rooted at `root`. */
export function listSamples(format: DatasetFormat, root: string, opts: ListOptions): SegSample[] {
  if (!existsSync(root)) throw new Error(`dataset root ${root} does not exist`);
  const samples =
    format === 'voc' ? listVoc(root, opts.split) : format === 'cityscapes' ? listCityscapes(root, opts.split) : listCamVid(root, opts.split);
  if (samples.length === 0) throw new Error(`no samples found for ${format} split '${opts.split}' under ${root}`);
  return samples;
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

function readLines(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
