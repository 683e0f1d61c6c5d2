/**
 * COCO instances reader (`instances_*.json` + image folder). Category ids are mapped to
 * contiguous labels in increasing id order (COCO: 80 classes, ids 1..90). Crowd annotations are
 * kept with `iscrowd = 1`: training ignores them, evaluation uses them as COCOeval does.
 *
 * Every image and annotation is checked when the file is opened; all problems are thrown together
 * (a {@link DatasetValidationError}), each naming the file, the array index, the record's id and
 * the field: an image without a positive numeric `width` / `height`, a duplicate image id, an
 * annotation whose `image_id` is not an image or whose `category_id` is not a category, a `bbox`
 * that is not 4 finite numbers (e.g. numbers stored as strings) or has a negative width / height.
 * Boxes partly outside the image are clipped, zero-area and outside boxes dropped, and counted
 * in `summary` (see `validation.ts`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CategoryMap, DetectionDataset, DetectionRecord } from './dataset.js';
import { DatasetValidationError, checkClassList, emptySummary, sanitizeBox, type DatasetSummary } from './validation.js';

/** Options of {@link readCocoDataset}. */
export interface CocoOptions {
  /** Annotation file (`instances_*.json`). */
  annotations: string;
  /** Folder holding the images named by `file_name`. */
  images: string;
  /**
   * Category map to use (a checkpoint's); default: the file's categories in id order. An
   * annotation of a file category outside it is an error unless `dropUnknownClasses`.
   */
  categories?: CategoryMap;
  /**
   * Category names to train on, in label order (`--classes`); each must be a category of the file.
   * Ignored when `categories` is given.
   */
  classes?: string[];
  /** Drop (and count) annotations whose category is not in `categories` / `classes` instead of failing. */
  dropUnknownClasses?: boolean;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
/** A value for a message: JSON, with non-finite numbers spelled out (JSON.stringify writes null). */
const show = (v: unknown): string =>
  v === undefined ? 'nothing' : JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isFinite(x) ? `\u0000${x}` : x)).replace(/"\\u0000([^"]*)"/g, '$1');

/**
 * Reads and validates a COCO-format detection dataset.
 * @throws {DatasetValidationError} listing every problem (file, index, id, field)
 */
export function readCocoDataset(opts: CocoOptions): DetectionDataset {
  const file = opts.annotations;
  if (!fs.existsSync(file)) throw new Error(`COCO annotation file ${file} does not exist`);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`COCO annotation file ${file}: malformed JSON: ${(e as Error).message}`);
  }
  if (!isObject(json) || !Array.isArray(json.images) || !Array.isArray(json.annotations) || !Array.isArray(json.categories)) {
    throw new Error(`COCO annotation file ${file}: expected "images", "annotations" and "categories" arrays`);
  }
  const problems: string[] = [];

  // categories
  const fileCats: { id: number; name: string }[] = [];
  (json.categories as unknown[]).forEach((c, i) => {
    if (!isObject(c) || !isFiniteNumber(c.id) || typeof c.name !== 'string') {
      problems.push(`${file}: categories[${i}]: needs a numeric 'id' and a string 'name', got ${show(c)}`);
    } else if (fileCats.some((f) => f.id === c.id)) {
      problems.push(`${file}: categories[${i}]: 'id' ${c.id} appears twice`);
    } else {
      fileCats.push({ id: c.id, name: c.name });
    }
  });
  const fileCatIds = new Set(fileCats.map((c) => c.id));
  const sortedCats = [...fileCats].sort((a, b) => a.id - b.id);
  let categories: CategoryMap;
  let classesFrom: string;
  if (opts.categories) {
    categories = opts.categories;
    classesFrom = 'the detector';
  } else if (opts.classes) {
    checkClassList(opts.classes, '--classes');
    const byName = new Map(sortedCats.map((c) => [c.name, c.id]));
    for (const n of opts.classes) if (!byName.has(n)) problems.push(`${file}: --classes names '${n}', which is not a category of the file`);
    categories = { ids: opts.classes.map((n) => byName.get(n) ?? -1), names: opts.classes };
    classesFrom = '--classes';
  } else {
    categories = { ids: sortedCats.map((c) => c.id), names: sortedCats.map((c) => c.name) };
    classesFrom = "the file's categories";
  }
  const labelOf = new Map(categories.ids.map((id, i) => [id, i]));

  // images
  const images: { id: number; file_name: string; width: number; height: number }[] = [];
  const imageIds = new Set<number>();
  (json.images as unknown[]).forEach((img, i) => {
    const where = `${file}: images[${i}]`;
    if (!isObject(img)) {
      problems.push(`${where}: not an object`);
      return;
    }
    if (!isFiniteNumber(img.id)) {
      problems.push(`${where}: 'id' must be a number, got ${show(img.id)}`);
      return;
    }
    const w = `${where} (id ${img.id})`;
    let ok = true;
    if (imageIds.has(img.id)) {
      problems.push(`${w}: 'id' ${img.id} appears twice`);
      ok = false;
    }
    imageIds.add(img.id);
    for (const key of ['width', 'height'] as const) {
      if (!isFiniteNumber(img[key]) || img[key] <= 0) {
        problems.push(`${w}: '${key}' must be a positive number, got ${show(img[key])}`);
        ok = false;
      }
    }
    if (typeof img.file_name !== 'string' || img.file_name === '') {
      problems.push(`${w}: 'file_name' must be a non-empty string, got ${show(img.file_name)}`);
      ok = false;
    }
    if (ok) images.push({ id: img.id, file_name: img.file_name as string, width: img.width as number, height: img.height as number });
  });

  // annotations
  interface Ann {
    id: number | string;
    box: [number, number, number, number];
    label: number;
    iscrowd: number;
    area: number;
  }
  const summary: DatasetSummary = emptySummary(classesFrom, categories.names);
  const warnings: string[] = [];
  const sizeOf = new Map(images.map((im) => [im.id, im]));
  const byImage = new Map<number, Ann[]>();
  (json.annotations as unknown[]).forEach((a, i) => {
    const where0 = `${file}: annotations[${i}]`;
    if (!isObject(a)) {
      problems.push(`${where0}: not an object`);
      return;
    }
    summary.boxesRead++;
    const where = `${where0} (id ${a.id ?? '?'})`;
    let ok = true;
    if (!isFiniteNumber(a.image_id)) {
      problems.push(`${where}: 'image_id' must be a number, got ${show(a.image_id)}`);
      ok = false;
    } else if (!imageIds.has(a.image_id)) {
      problems.push(`${where}: 'image_id' ${a.image_id} is not an image of the file`);
      ok = false;
    }
    if (!isFiniteNumber(a.category_id)) {
      problems.push(`${where}: 'category_id' must be a number, got ${show(a.category_id)}`);
      ok = false;
    } else if (!fileCatIds.has(a.category_id)) {
      problems.push(`${where}: 'category_id' ${a.category_id} is not a category of the file`);
      ok = false;
    }
    const bb = a.bbox;
    if (!Array.isArray(bb) || bb.length !== 4 || !bb.every(isFiniteNumber)) {
      problems.push(`${where}: 'bbox' must be [x, y, width, height] as 4 finite numbers, got ${show(bb)}`);
      ok = false;
    } else if (bb[2]! < 0 || bb[3]! < 0) {
      problems.push(`${where}: 'bbox' [${bb.join(', ')}] has a negative ${bb[2]! < 0 ? 'width' : 'height'}`);
      ok = false;
    }
    if (a.iscrowd !== undefined && a.iscrowd !== 0 && a.iscrowd !== 1 && typeof a.iscrowd !== 'boolean') {
      problems.push(`${where}: 'iscrowd' must be 0 or 1, got ${show(a.iscrowd)}`);
      ok = false;
    }
    if (a.area !== undefined && !isFiniteNumber(a.area)) {
      problems.push(`${where}: 'area' must be a finite number, got ${show(a.area)}`);
      ok = false;
    }
    if (!ok) return;
    const catId = a.category_id as number;
    const imageId = a.image_id as number;
    const img = sizeOf.get(imageId);
    if (!img) return; // the image itself has a problem, already reported
    const label = labelOf.get(catId);
    if (label === undefined) {
      if (!opts.dropUnknownClasses) {
        problems.push(`${where}: 'category_id' ${catId} is not in the class list [${categories.names.join(', ')}] (from ${classesFrom}); pass --drop-unknown-classes to drop such annotations`);
        return;
      }
      summary.droppedUnknownClass++;
      warnings.push(`${where}: category ${catId} not in the class list, dropped`);
      return;
    }
    const [x, y, w, h] = bb as number[];
    const box: [number, number, number, number] = [x!, y!, x! + w!, y! + h!];
    const fate = sanitizeBox(box, img.width, img.height);
    if (fate === 'zero-area') {
      summary.droppedZeroArea++;
      warnings.push(`${where} (image ${imageId}): degenerate bbox [${(bb as number[]).join(', ')}] (zero width or height) dropped`);
      return;
    }
    if (fate === 'outside') {
      summary.droppedOutside++;
      warnings.push(`${where} (image ${imageId}): bbox [${(bb as number[]).join(', ')}] lies outside the ${img.width}x${img.height} image, dropped`);
      return;
    }
    if (fate === 'clipped') {
      summary.clipped++;
      warnings.push(`${where} (image ${imageId}): bbox [${(bb as number[]).join(', ')}] clipped to the ${img.width}x${img.height} image (xyxy [${box.join(', ')}])`);
    }
    const list = byImage.get(imageId) ?? [];
    list.push({ id: (a.id as number) ?? '?', box, label, iscrowd: a.iscrowd ? 1 : 0, area: (a.area as number | undefined) ?? w! * h! });
    byImage.set(imageId, list);
  });
  if (problems.length) throw new DatasetValidationError(`COCO annotation file ${file}`, problems);

  const records: DetectionRecord[] = images.map((img) => {
    const anns = byImage.get(img.id) ?? [];
    for (const a of anns) summary.perClass[categories.names[a.label]!]!++;
    summary.boxesKept += anns.length;
    return {
      imageId: img.id,
      file: path.join(opts.images, img.file_name),
      width: img.width,
      height: img.height,
      boxes: new Float32Array(anns.flatMap((a) => a.box)),
      labels: Int32Array.from(anns, (a) => a.label),
      iscrowd: Uint8Array.from(anns, (a) => a.iscrowd),
      areas: Float32Array.from(anns, (a) => a.area),
    };
  });
  summary.images = records.length;
  return { source: file, records, categories, warnings, summary };
}
