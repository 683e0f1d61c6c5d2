/**
 * COCO instances reader (`instances_*.json` + image folder). Category ids are mapped to
 * contiguous labels in increasing id order (COCO: 80 classes, ids 1..90). Crowd
 * annotations are kept with `iscrowd = 1`: training ignores them, evaluation uses them
 * as COCOeval does. Boxes with non-positive width or height are dropped and reported.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CategoryMap, DetectionDataset, DetectionRecord } from './dataset.js';

interface CocoJson {
  images?: { id: number; file_name: string; width: number; height: number }[];
  annotations?: { id?: number; image_id: number; category_id: number; bbox: number[]; area?: number; iscrowd?: number }[];
  categories?: { id: number; name: string }[];
}

/** Options of {@link readCocoDataset}. */
export interface CocoOptions {
  /** Annotation file (`instances_*.json`). */
  annotations: string;
  /** Folder holding the images named by `file_name`. */
  images: string;
  /** Category map to use (a checkpoint's); default: the file's categories in id order. */
  categories?: CategoryMap;
}

function fail(file: string, msg: string): never {
  throw new Error(`COCO annotation file ${file}: ${msg}`);
}

/** Reads a COCO-format detection dataset. */
export function readCocoDataset(opts: CocoOptions): DetectionDataset {
  const file = opts.annotations;
  if (!fs.existsSync(file)) throw new Error(`COCO annotation file ${file} does not exist`);
  let json: CocoJson;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8')) as CocoJson;
  } catch (e) {
    fail(file, `malformed JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(json.images) || !Array.isArray(json.annotations) || !Array.isArray(json.categories)) {
    fail(file, 'expected "images", "annotations" and "categories" arrays');
  }
  const sortedCats = [...json.categories].sort((a, b) => a.id - b.id);
  const categories = opts.categories ?? { ids: sortedCats.map((c) => c.id), names: sortedCats.map((c) => c.name) };
  const labelOf = new Map(categories.ids.map((id, i) => [id, i]));
  const byImage = new Map<number, NonNullable<CocoJson['annotations']>>();
  for (const a of json.annotations) {
    if (!Array.isArray(a.bbox) || a.bbox.length !== 4) fail(file, `annotation ${a.id ?? '?'} has no 4-number bbox`);
    const list = byImage.get(a.image_id) ?? [];
    list.push(a);
    byImage.set(a.image_id, list);
  }
  const warnings: string[] = [];
  const records: DetectionRecord[] = json.images.map((img) => {
    const anns = (byImage.get(img.id) ?? []).filter((a) => {
      const [, , w, h] = a.bbox;
      if (!(w! > 0 && h! > 0)) {
        warnings.push(`${file} annotation ${a.id ?? '?'} (image ${img.id}): degenerate bbox [${a.bbox.join(', ')}] dropped`);
        return false;
      }
      if (!labelOf.has(a.category_id)) {
        warnings.push(`${file} annotation ${a.id ?? '?'}: category ${a.category_id} not in the category map, dropped`);
        return false;
      }
      return true;
    });
    return {
      imageId: img.id,
      file: path.join(opts.images, img.file_name),
      width: img.width,
      height: img.height,
      boxes: new Float32Array(anns.flatMap((a) => [a.bbox[0]!, a.bbox[1]!, a.bbox[0]! + a.bbox[2]!, a.bbox[1]! + a.bbox[3]!])),
      labels: Int32Array.from(anns, (a) => labelOf.get(a.category_id)!),
      iscrowd: Uint8Array.from(anns, (a) => (a.iscrowd ? 1 : 0)),
      areas: Float32Array.from(anns, (a) => a.area ?? a.bbox[2]! * a.bbox[3]!),
    };
  });
  return { source: file, records, categories, warnings };
}
