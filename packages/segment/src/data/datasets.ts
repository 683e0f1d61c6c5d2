/**
 * Dataset layouts (PASCAL VOC 2012, Cityscapes, CamVid) put together: the format -> info table,
 * the raw mask value -> train id tables and the split listing. Each format lives in its own file
 * (`voc.ts`, `cityscapes.ts`, `camvid.ts`); everything is re-exported here.
 */
import { existsSync } from 'node:fs';
import { CAMVID_INFO, listCamVid } from './camvid.js';
import { CITYSCAPES_INFO, listCityscapes } from './cityscapes.js';
import type { DatasetFormat, DatasetInfo, SegSample } from './dataset.js';
import { validateSamples } from './validate.js';
import { VOC_INFO, listVoc } from './voc.js';

export { IGNORE_INDEX, type DatasetFormat, type DatasetInfo, type MaskKind, type SegSample } from './dataset.js';
export { labelTable } from './labels.js';
export { VOC_CLASSES, vocColourMap, listVoc } from './voc.js';
export { CITYSCAPES_CLASSES, CITYSCAPES_LABELS, listCityscapes } from './cityscapes.js';
export { CAMVID_CLASSES, listCamVid } from './camvid.js';
export { SegDatasetError, checkSamples, validateSamples } from './validate.js';
export { imageSizeFromHeader } from './image-size.js';

/** Class names, palette and normalisation of each format. */
export const DATASETS: Record<DatasetFormat, DatasetInfo> = {
  voc: VOC_INFO,
  cityscapes: CITYSCAPES_INFO,
  camvid: CAMVID_INFO,
};

/** Where the split list lives and which samples it names. */
export interface ListOptions {
  /** Split name: `train`, `val` (all); `trainval` (VOC); `train_aug` (VOC + SBD); `test` where masks exist. */
  split: string;
  /**
   * Check every sample when the split is opened (default true): images and masks exist, every
   * mask decodes and holds only class ids or ignore, and has its image's size (`validate.ts`).
   * `false` only lists (for tools that check later themselves).
   */
  validate?: boolean;
}

/**
 * Opens one split of a dataset rooted at `root`: lists its samples and, unless
 * `validate: false`, checks every one of them (CamVid's 367 + 101 pairs: about 1.5 s).
 * @throws {SegDatasetError} listing every problem of the split (file, pixel, value)
 */
export function listSamples(format: DatasetFormat, root: string, opts: ListOptions): SegSample[] {
  if (!existsSync(root)) throw new Error(`dataset root ${root} does not exist`);
  const samples =
    format === 'voc' ? listVoc(root, opts.split) : format === 'cityscapes' ? listCityscapes(root, opts.split) : listCamVid(root, opts.split);
  if (samples.length === 0) throw new Error(`no samples found for ${format} split '${opts.split}' under ${root}`);
  if (opts.validate !== false) validateSamples(samples, `${format} split '${opts.split}' under ${root}`);
  return samples;
}
