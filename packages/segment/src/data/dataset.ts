/**
 * Types shared by the dataset layouts (one file per format: `voc.ts`, `cityscapes.ts`,
 * `camvid.ts`; `datasets.ts` puts them together): a sample is an image and its label mask, and a
 * mask kind says how a raw mask value becomes a train id (0..numClasses-1) or the ignore label.
 */
import { readFileSync } from 'node:fs';

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

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/** Non-empty, trimmed lines of a text file (split lists). */
export function readLines(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
