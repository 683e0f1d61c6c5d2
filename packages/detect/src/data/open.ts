/** Opens a dataset from a path, detecting the format (PASCAL VOC folder or COCO JSON). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCocoDataset } from './coco.js';
import type { CategoryMap, DetectionDataset } from './dataset.js';
import { readVocDataset } from './voc.js';

/** Options of {@link openDataset}. */
export interface OpenDatasetOptions {
  /**
   * VOC: the `ImageSets/Main` split; COCO folder: the split name in `annotations/instances_<split>.json`
   * and the image folder `<split>/`.
   */
  split: string;
  /** COCO: image folder when `spec` is a JSON file (default: the folder beside `annotations/` named by the split). */
  images?: string;
  /** Category map to use (a checkpoint's), so labels match the trained model. */
  categories?: CategoryMap;
  /**
   * Class names in label order (`--classes`): objects of any other class are an error in every
   * split unless `dropUnknownClasses`. Default: the checkpoint's `categories`, else the dataset's
   * own list (COCO: its categories; VOC: the names in the split's annotations, sorted).
   * Must equal the checkpoint's names when both are given.
   */
  classes?: string[];
  /** Drop (and count in `summary`) objects whose class is not in the list instead of failing (`--drop-unknown-classes`). */
  dropUnknownClasses?: boolean;
}

/**
 * Opens and validates one split. Every record is checked here, before any training step: wrong
 * data throws a `DatasetValidationError` listing every problem (file, record, field); clipped and
 * dropped boxes are counted in the returned dataset's `summary` (log it with `formatDatasetSummary`).
 *
 * `spec` may be: a VOC root (holding `Annotations/`), a folder whose single child is a VOC root
 * (as BCCD's `bccd/BCCD`), a COCO JSON file, or a COCO root with `annotations/instances_<split>.json`.
 */
export function openDataset(spec: string, opts: OpenDatasetOptions): DetectionDataset {
  if (!fs.existsSync(spec)) throw new Error(`dataset path ${spec} does not exist`);
  if (opts.classes && opts.categories && opts.classes.join('\n') !== opts.categories.names.join('\n')) {
    throw new Error(`--classes [${opts.classes.join(', ')}] differs from the checkpoint's classes [${opts.categories.names.join(', ')}]`);
  }
  const select = { categories: opts.categories, classes: opts.classes, dropUnknownClasses: opts.dropUnknownClasses };
  if (fs.statSync(spec).isFile()) {
    if (!spec.endsWith('.json')) throw new Error(`dataset ${spec}: expected a COCO .json file or a dataset folder`);
    const images = opts.images ?? path.join(path.dirname(path.dirname(spec)), opts.split);
    return readCocoDataset({ annotations: spec, images, ...select });
  }
  const vocRoot = findVocRoot(spec);
  if (vocRoot) {
    return readVocDataset(vocRoot, {
      split: opts.split,
      classes: opts.categories?.names ?? opts.classes,
      classesFrom: opts.categories ? 'the detector' : '--classes',
      dropUnknownClasses: opts.dropUnknownClasses,
    });
  }
  const ann = path.join(spec, 'annotations', `instances_${opts.split}.json`);
  if (fs.existsSync(ann)) {
    return readCocoDataset({ annotations: ann, images: opts.images ?? path.join(spec, opts.split), ...select });
  }
  throw new Error(
    `dataset ${spec}: neither a VOC root (Annotations/, JPEGImages/, ImageSets/Main/) nor a COCO root with ${path.join('annotations', `instances_${opts.split}.json`)}`,
  );
}

function findVocRoot(dir: string): string | undefined {
  if (fs.existsSync(path.join(dir, 'Annotations'))) return dir;
  const children = fs.readdirSync(dir).filter((c) => fs.existsSync(path.join(dir, c, 'Annotations')));
  return children.length === 1 ? path.join(dir, children[0]!) : undefined;
}
