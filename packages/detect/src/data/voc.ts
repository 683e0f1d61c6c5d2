/**
 * PASCAL VOC reader: `Annotations/<id>.xml`, `JPEGImages/<id>.jpg`, `ImageSets/Main/<split>.txt`.
 * Coordinates are taken as written (VOC's 1-based pixel indices are not shifted, as
 * torchvision's `VOCDetection`). Boxes with zero or negative width/height cannot be
 * trained or evaluated: they are dropped and listed in `warnings`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CategoryMap, DetectionDataset, DetectionRecord } from './dataset.js';

/** Options of {@link readVocDataset}. */
export interface VocOptions {
  /** Split name: reads `ImageSets/Main/<split>.txt` (e.g. `train`, `val`, `test`, `trainval`). */
  split: string;
  /**
   * Class names in label order. Default: every class found in the split's
   * annotations, sorted alphabetically (pass the checkpoint's list for evaluation).
   */
  classes?: string[];
}

interface VocObject {
  name: string;
  box: [number, number, number, number];
  difficult: boolean;
}

function tag(xml: string, name: string, file: string, required = true): string | undefined {
  const m = new RegExp(`<${name}>\\s*([\\s\\S]*?)\\s*</${name}>`).exec(xml);
  if (!m && required) throw new Error(`${file}: missing <${name}>`);
  return m?.[1];
}

function num(xml: string, name: string, file: string): number {
  const v = Number(tag(xml, name, file));
  if (!Number.isFinite(v)) throw new Error(`${file}: <${name}> is not a number`);
  return v;
}

/** Parses one VOC annotation file. */
export function parseVocXml(xml: string, file: string): { filename?: string; width: number; height: number; objects: VocObject[] } {
  if (!xml.includes('<annotation')) throw new Error(`${file}: not a VOC annotation (no <annotation> element)`);
  const size = tag(xml, 'size', file)!;
  const objects = [...xml.matchAll(/<object>([\s\S]*?)<\/object>/g)].map((m, i) => {
    const body = m[1]!;
    const where = `${file} object ${i + 1}`;
    const bnd = tag(body, 'bndbox', where)!;
    return {
      name: tag(body, 'name', where)!,
      box: [num(bnd, 'xmin', where), num(bnd, 'ymin', where), num(bnd, 'xmax', where), num(bnd, 'ymax', where)] as [number, number, number, number],
      difficult: tag(body, 'difficult', where, false) === '1',
    };
  });
  return { filename: tag(xml, 'filename', file, false), width: num(size, 'width', file), height: num(size, 'height', file), objects };
}

/** Reads a VOC split. `difficult` objects are kept as crowd (ignored) regions, as VOC evaluation ignores them. */
export function readVocDataset(root: string, opts: VocOptions): DetectionDataset {
  const listFile = path.join(root, 'ImageSets', 'Main', `${opts.split}.txt`);
  if (!fs.existsSync(listFile)) throw new Error(`VOC split file ${listFile} does not exist (is ${root} a VOC root with Annotations/, JPEGImages/, ImageSets/Main/?)`);
  const ids = fs.readFileSync(listFile, 'utf8').split(/\r?\n/).map((l) => l.trim().split(/\s+/)[0]!).filter(Boolean);
  if (ids.length === 0) throw new Error(`VOC split file ${listFile} lists no images`);
  const parsed = ids.map((id) => {
    const file = path.join(root, 'Annotations', `${id}.xml`);
    if (!fs.existsSync(file)) throw new Error(`VOC annotation ${file} (listed in ${listFile}) does not exist`);
    return { id, file, ann: parseVocXml(fs.readFileSync(file, 'utf8'), file) };
  });
  const classes = opts.classes ?? [...new Set(parsed.flatMap((p) => p.ann.objects.map((o) => o.name)))].sort();
  const categories: CategoryMap = { ids: classes.map((_, i) => i + 1), names: classes };
  const warnings: string[] = [];
  const records: DetectionRecord[] = parsed.map(({ id, file, ann }, index) => {
    const image = path.join(root, 'JPEGImages', ann.filename && path.extname(ann.filename) ? ann.filename : `${id}.jpg`);
    const keep = ann.objects.filter((o, i) => {
      const [x1, y1, x2, y2] = o.box;
      if (x2 <= x1 || y2 <= y1) {
        warnings.push(`${file} object ${i + 1} (${o.name}): degenerate box [${o.box.join(', ')}] dropped`);
        return false;
      }
      if (!classes.includes(o.name)) {
        warnings.push(`${file} object ${i + 1}: class '${o.name}' is not in the class list [${classes.join(', ')}], dropped`);
        return false;
      }
      return true;
    });
    const boxes = new Float32Array(keep.flatMap((o) => o.box));
    return {
      imageId: index + 1,
      file: image,
      width: ann.width,
      height: ann.height,
      boxes,
      labels: Int32Array.from(keep, (o) => classes.indexOf(o.name)),
      iscrowd: Uint8Array.from(keep, (o) => (o.difficult ? 1 : 0)),
      areas: Float32Array.from(keep, (o) => (o.box[2] - o.box[0]) * (o.box[3] - o.box[1])),
    };
  });
  return { source: `${root} (${opts.split})`, records, categories, warnings };
}
