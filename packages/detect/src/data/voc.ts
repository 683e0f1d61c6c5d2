/**
 * PASCAL VOC reader: `Annotations/<id>.xml`, `JPEGImages/<id>.jpg`, `ImageSets/Main/<split>.txt`.
 *
 * The XML is read with fast-xml-parser after its validator has accepted the whole document, so a
 * truncated or unterminated file is an error, never a partial read. Every annotation of the split
 * is checked when it is opened; see `validation.ts` for what is an error (all of them are
 * collected and thrown together, each naming file, object and field) and what is fixed and
 * counted (clipped boxes, zero-area / outside boxes dropped).
 *
 * Coordinates are taken as written (VOC's 1-based pixel indices are not shifted, as torchvision's
 * `VOCDetection`); a box is clipped to `[0, width] x [0, height]`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { CategoryMap, DetectionDataset, DetectionRecord } from './dataset.js';
import {
  DatasetValidationError,
  caseClashes,
  checkClassList,
  emptySummary,
  parseNumber,
  sanitizeBox,
  type DatasetSummary,
} from './validation.js';

/** Options of {@link readVocDataset}. */
export interface VocOptions {
  /** Split name: reads `ImageSets/Main/<split>.txt` (e.g. `train`, `val`, `test`, `trainval`). */
  split: string;
  /**
   * Class names in label order (`--classes`, or a checkpoint's list). An object whose name is not
   * in it is an error unless `dropUnknownClasses`. Default: every class found in the split's
   * annotations, sorted alphabetically; names that then differ only in letter case are an error.
   */
  classes?: string[];
  /** Where `classes` came from, for messages and the summary (default `--classes`). */
  classesFrom?: string;
  /** Drop (and count) objects whose class is not in `classes` instead of failing. */
  dropUnknownClasses?: boolean;
}

/** One `<object>` as written in the file. */
export interface VocObject {
  name: string;
  /** `[xmin, ymin, xmax, ymax]` as written. */
  box: [number, number, number, number];
  difficult: boolean;
}

/** One parsed annotation file. */
export interface VocAnnotation {
  filename?: string;
  width: number;
  height: number;
  objects: VocObject[];
}

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: true,
  processEntities: true,
  isArray: (_name, jpath) => jpath === 'annotation.object',
});

/** Explains fast-xml-parser's validation error, e.g. unclosed elements of a truncated file. */
function xmlProblem(err: { code: string; msg: string; line?: number; col?: number }): string {
  const open = err.code === 'InvalidXml' && /^Invalid '\[/.test(err.msg) ? [...err.msg.matchAll(/"([^"]+)"/g)].map((m) => `<${m[1]}>`) : [];
  if (open.length) return `truncated or unterminated XML: ${open.join(', ')} never closed before the end of the file`;
  return `not well-formed XML (line ${err.line ?? '?'}, column ${err.col ?? '?'}): ${err.msg}`;
}

/** A single child element's text; a repeated element is a problem. */
function text(node: Record<string, unknown> | undefined, key: string): { value?: string; problem?: string } {
  const v = node?.[key];
  if (v === undefined) return { problem: 'missing' };
  if (Array.isArray(v)) return { problem: `appears ${v.length} times` };
  if (typeof v === 'object' && v !== null) return { problem: 'holds elements instead of text' };
  return { value: String(v) };
}

/**
 * Parses one VOC annotation file, collecting every problem (file, object, field) into `problems`.
 * Returns `undefined` when the document itself cannot be read (not well-formed, no `<annotation>`
 * or no usable `<size>`); objects with a bad field are left out of the result.
 */
export function parseVocAnnotation(xml: string, file: string, problems: string[]): VocAnnotation | undefined {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    problems.push(`${file}: ${xmlProblem(valid.err)}`);
    return undefined;
  }
  const doc = parser.parse(xml) as Record<string, unknown>;
  const ann = doc.annotation;
  if (ann === undefined || ann === null || typeof ann !== 'object' || Array.isArray(ann)) {
    problems.push(`${file}: not a VOC annotation (no single <annotation> element)`);
    return undefined;
  }
  const a = ann as Record<string, unknown>;
  const size = a.size;
  const dims: number[] = [];
  if (size === undefined || Array.isArray(size) || typeof size !== 'object' || size === null) {
    problems.push(`${file}: <size> ${size === undefined ? 'is missing' : Array.isArray(size) ? `appears ${size.length} times` : 'holds no <width>/<height>'}`);
  } else {
    for (const key of ['width', 'height'] as const) {
      const t = text(size as Record<string, unknown>, key);
      const n = parseNumber(t.value);
      if (t.problem) problems.push(`${file}: <size>/<${key}> ${t.problem}`);
      else if (n === undefined || n <= 0) problems.push(`${file}: <size>/<${key}> must be a positive number, got '${t.value}'`);
      else dims.push(n);
    }
  }
  const filename = a.filename === undefined ? undefined : text(a, 'filename');
  if (filename?.problem) problems.push(`${file}: <filename> ${filename.problem}`);
  const objects: VocObject[] = [];
  ((a.object as unknown[] | undefined) ?? []).forEach((o, i) => {
    const where = `${file} object ${i + 1}`;
    if (o === null || typeof o !== 'object') {
      problems.push(`${where}: <object> holds no elements`);
      return;
    }
    const obj = o as Record<string, unknown>;
    const name = text(obj, 'name');
    const label = name.value !== undefined ? ` (${name.value})` : '';
    let ok = true;
    if (name.problem || name.value === '') {
      problems.push(`${where}: <name> ${name.problem ?? 'is empty'}`);
      ok = false;
    }
    const bnd = obj.bndbox;
    const box: number[] = [];
    if (bnd === undefined || Array.isArray(bnd) || typeof bnd !== 'object' || bnd === null) {
      problems.push(`${where}${label}: <bndbox> ${bnd === undefined ? 'is missing' : Array.isArray(bnd) ? `appears ${bnd.length} times` : 'holds no coordinates'}`);
      ok = false;
    } else {
      for (const key of ['xmin', 'ymin', 'xmax', 'ymax'] as const) {
        const t = text(bnd as Record<string, unknown>, key);
        const n = parseNumber(t.value);
        if (t.problem) problems.push(`${where}${label}: <bndbox>/<${key}> ${t.problem}`);
        else if (n === undefined) problems.push(`${where}${label}: <bndbox>/<${key}> is not a number: '${t.value}'`);
        else box.push(n);
      }
      if (box.length === 4) {
        if (box[2]! < box[0]!) problems.push(`${where}${label}: <bndbox> xmax ${box[2]} < xmin ${box[0]}`);
        if (box[3]! < box[1]!) problems.push(`${where}${label}: <bndbox> ymax ${box[3]} < ymin ${box[1]}`);
      }
      ok &&= box.length === 4 && box[2]! >= box[0]! && box[3]! >= box[1]!;
    }
    let difficult = false;
    if (obj.difficult !== undefined) {
      const d = text(obj, 'difficult');
      if (d.problem || (d.value !== '0' && d.value !== '1')) {
        problems.push(`${where}${label}: <difficult> must be 0 or 1, got ${d.problem ?? `'${d.value}'`}`);
        ok = false;
      }
      difficult = d.value === '1';
    }
    if (ok) objects.push({ name: name.value!, box: box as VocObject['box'], difficult });
  });
  if (dims.length !== 2) return undefined;
  return { filename: filename?.value, width: dims[0]!, height: dims[1]!, objects };
}

/**
 * Parses one VOC annotation file.
 * @throws {DatasetValidationError} listing every problem (file, object, field), e.g. a truncated document
 */
export function parseVocXml(xml: string, file: string): VocAnnotation {
  const problems: string[] = [];
  const ann = parseVocAnnotation(xml, file, problems);
  if (problems.length || !ann) throw new DatasetValidationError(file, problems);
  return ann;
}

/**
 * Reads and validates a VOC split. `difficult` objects are kept as crowd (ignored) regions, as VOC
 * evaluation ignores them. Boxes partly outside the image are clipped, zero-area and outside boxes
 * dropped; both are counted in the returned `summary` and listed in `warnings`.
 * @throws {DatasetValidationError} listing every problem of the split (file, object, field)
 */
export function readVocDataset(root: string, opts: VocOptions): DetectionDataset {
  const listFile = path.join(root, 'ImageSets', 'Main', `${opts.split}.txt`);
  if (!fs.existsSync(listFile)) throw new Error(`VOC split file ${listFile} does not exist (is ${root} a VOC root with Annotations/, JPEGImages/, ImageSets/Main/?)`);
  const ids = fs.readFileSync(listFile, 'utf8').split(/\r?\n/).map((l) => l.trim().split(/\s+/)[0]!).filter(Boolean);
  if (ids.length === 0) throw new Error(`VOC split file ${listFile} lists no images`);
  const source = `${root} (${opts.split})`;
  const problems: string[] = [];
  const parsed = ids.map((id) => {
    const file = path.join(root, 'Annotations', `${id}.xml`);
    if (!fs.existsSync(file)) {
      problems.push(`${file}: does not exist (listed in ${listFile})`);
      return { id, file, ann: undefined };
    }
    return { id, file, ann: parseVocAnnotation(fs.readFileSync(file, 'utf8'), file, problems) };
  });
  let classes: string[];
  let classesFrom: string;
  if (opts.classes) {
    classesFrom = opts.classesFrom ?? '--classes';
    checkClassList(opts.classes, classesFrom);
    classes = opts.classes;
  } else {
    classesFrom = `the annotations of split ${opts.split}`;
    classes = [...new Set(parsed.flatMap((p) => p.ann?.objects.map((o) => o.name) ?? []))].sort();
    for (const clash of caseClashes(classes)) {
      problems.push(`${source}: class names ${clash} differ only in letter case (a typo?); pass the intended list with --classes`);
    }
  }
  const summary: DatasetSummary = emptySummary(classesFrom, classes);
  const labelOf = new Map(classes.map((c, i) => [c, i]));
  const warnings: string[] = [];
  const records: DetectionRecord[] = [];
  parsed.forEach(({ id, file, ann }, index) => {
    if (!ann) return;
    const keep: VocObject[] = [];
    ann.objects.forEach((o, i) => {
      summary.boxesRead++;
      const where = `${file} object ${i + 1} (${o.name})`;
      if (!labelOf.has(o.name)) {
        if (!opts.dropUnknownClasses) {
          problems.push(`${where}: <name> '${o.name}' is not in the class list [${classes.join(', ')}] (from ${classesFrom}); pass --drop-unknown-classes to drop such objects`);
          return;
        }
        summary.droppedUnknownClass++;
        warnings.push(`${where}: class not in [${classes.join(', ')}], dropped`);
        return;
      }
      const box: VocObject['box'] = [...o.box];
      const fate = sanitizeBox(box, ann.width, ann.height);
      if (fate === 'zero-area') {
        summary.droppedZeroArea++;
        warnings.push(`${where}: degenerate box [${o.box.join(', ')}] (zero width or height) dropped`);
      } else if (fate === 'outside') {
        summary.droppedOutside++;
        warnings.push(`${where}: box [${o.box.join(', ')}] lies outside the ${ann.width}x${ann.height} image, dropped`);
      } else {
        if (fate === 'clipped') {
          summary.clipped++;
          warnings.push(`${where}: box [${o.box.join(', ')}] clipped to the ${ann.width}x${ann.height} image: [${box.join(', ')}]`);
        }
        keep.push({ ...o, box });
      }
    });
    const image = path.join(root, 'JPEGImages', ann.filename && path.extname(ann.filename) ? ann.filename : `${id}.jpg`);
    for (const o of keep) summary.perClass[o.name]!++;
    summary.boxesKept += keep.length;
    records.push({
      imageId: index + 1,
      file: image,
      width: ann.width,
      height: ann.height,
      boxes: new Float32Array(keep.flatMap((o) => o.box)),
      labels: Int32Array.from(keep, (o) => labelOf.get(o.name)!),
      iscrowd: Uint8Array.from(keep, (o) => (o.difficult ? 1 : 0)),
      areas: Float32Array.from(keep, (o) => (o.box[2] - o.box[0]) * (o.box[3] - o.box[1])),
    });
  });
  if (problems.length) throw new DatasetValidationError(source, problems);
  summary.images = records.length;
  const categories: CategoryMap = { ids: classes.map((_, i) => i + 1), names: classes };
  return { source, records, categories, warnings, summary };
}
