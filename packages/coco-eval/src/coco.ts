/**
 * The COCO API (pycocotools `coco.py`): load an instances file, index it, filter ids, load results.
 *
 * Annotations are also kept column-wise (typed arrays, see {@link AnnotationTable}) so that
 * evaluation never walks hundreds of thousands of objects; the caller's objects are never mutated.
 */
import { readFileSync } from 'node:fs';
import {
  type Rle,
  type Segmentation,
  rleArea,
  rleDecode,
  rleFrString,
  rleToBbox,
  segmentationToRle,
  toCompressed,
  type CompressedRle,
} from './mask.js';

/** An image record of an instances file. */
export interface CocoImage {
  id: number;
  height: number;
  width: number;
  file_name?: string;
  [key: string]: unknown;
}

/** A category record. */
export interface CocoCategory {
  id: number;
  name: string;
  supercategory?: string;
  [key: string]: unknown;
}

/** A ground-truth annotation (or a loaded result, which also has `score`). */
export interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  /** `[x, y, width, height]` */
  bbox?: number[];
  area?: number;
  iscrowd?: number;
  segmentation?: Segmentation;
  score?: number;
  /** `[x1, y1, v1, ...]` (person keypoints files) */
  keypoints?: number[];
  num_keypoints?: number;
  [key: string]: unknown;
}

/** An instances file. */
export interface CocoDataset {
  info?: Record<string, unknown>;
  images: CocoImage[];
  annotations: CocoAnnotation[];
  categories: CocoCategory[];
  [key: string]: unknown;
}

/** One detection as written to a COCO results file. */
export interface DetectionResult {
  image_id: number;
  category_id: number;
  score: number;
  /** `[x, y, width, height]`; required for bbox results */
  bbox?: number[];
  /** compressed RLE; required for segm results without bbox */
  segmentation?: CompressedRle;
  /** `[x1, y1, v1, ...]`; required for keypoint results */
  keypoints?: number[];
  [key: string]: unknown;
}

/**
 * Annotations column-wise. Index `i` is the i-th annotation in file order.
 * Missing numeric fields are NaN (checked where evaluation needs them, with the annotation named).
 */
export interface AnnotationTable {
  /** number of annotations */
  n: number;
  /** [n] annotation ids */
  id: Float64Array;
  /** [n] image ids */
  imageId: Float64Array;
  /** [n] category ids */
  categoryId: Float64Array;
  /** [n] `area` field */
  area: Float64Array;
  /** [n] `iscrowd` field (NaN when absent) */
  iscrowd: Float64Array;
  /** [n * 4] boxes xywh (NaN when absent) */
  bbox: Float64Array;
  /** [n] scores (NaN for ground truth) */
  score: Float64Array;
  /** [n] segmentation objects by reference (undefined when absent) */
  segm: (unknown | undefined)[];
  /** [n] keypoints `[x1, y1, v1, ...]` by reference (undefined when absent) */
  keypoints: (number[] | undefined)[];
  /** [n] `num_keypoints` field (NaN when absent) */
  numKeypoints: Float64Array;
}

/** Filters of {@link COCO.getAnnIds}; an empty or missing filter is skipped, as in pycocotools. */
export interface AnnIdFilter {
  imgIds?: number | number[];
  catIds?: number | number[];
  /** keep anns with `areaRng[0] < area < areaRng[1]` (strict, as pycocotools) */
  areaRng?: number[];
  iscrowd?: boolean | number | null;
}

/** Options of {@link COCO.loadRes}. */
export interface LoadResOptions {
  /**
   * pycocotools fails on an empty result list (it reads `anns[0]`); by default so do we, with a
   * clear message. Set this to evaluate an empty result set instead (every AP is then 0).
   */
  allowEmpty?: boolean;
}

const asList = (v: number | number[] | undefined): number[] =>
  v === undefined ? [] : Array.isArray(v) ? v : [v];

/** The COCO API over one dataset (ground truth or results). */
export class COCO {
  /** Where the data came from, used in error messages (a file path or `<object>`). */
  readonly source: string;
  /** image id -> image */
  readonly imgs = new Map<number, CocoImage>();
  /** category id -> category */
  readonly cats = new Map<number, CocoCategory>();
  /** image id -> annotation row indices, in file order */
  readonly imgToAnns = new Map<number, number[]>();
  /** category id -> image ids of its annotations (one per annotation, as pycocotools) */
  readonly catToImgs = new Map<number, number[]>();
  /** annotation id -> row index */
  private readonly annIndex = new Map<number, number>();
  private datasetValue: CocoDataset;
  private readonly rawAnns: CocoAnnotation[] | null;
  /** @internal column-wise annotations, used by COCOeval */
  readonly table: AnnotationTable;

  /**
   * @param annotation path of an instances JSON file, or the parsed object (not copied, not mutated)
   */
  constructor(annotation?: string | CocoDataset, internal?: { table: AnnotationTable; dataset: CocoDataset; source: string }) {
    if (internal) {
      this.source = internal.source;
      this.datasetValue = internal.dataset;
      this.table = internal.table;
      this.rawAnns = null;
    } else {
      this.source = typeof annotation === 'string' ? annotation : '<object>';
      const dataset = typeof annotation === 'string' ? readJson(annotation) : (annotation ?? emptyDataset());
      validateDataset(dataset, this.source);
      this.datasetValue = dataset;
      this.rawAnns = dataset.annotations ?? [];
      this.table = tableFromAnnotations(this.rawAnns, this.source);
    }
    this.createIndex();
  }

  /** The dataset object (for results, annotations are built on first access). */
  get dataset(): CocoDataset {
    if (this.datasetValue.annotations === undefined) {
      this.datasetValue = { ...this.datasetValue, annotations: this.loadAnns(this.getAnnIds()) };
    }
    return this.datasetValue;
  }

  private createIndex(): void {
    const ds = this.datasetValue;
    for (const img of ds.images ?? []) this.imgs.set(img.id, img);
    for (const cat of ds.categories ?? []) this.cats.set(cat.id, cat);
    const t = this.table;
    const withCats = ds.categories !== undefined;
    for (let i = 0; i < t.n; i++) {
      const imgId = t.imageId[i]!;
      let list = this.imgToAnns.get(imgId);
      if (!list) this.imgToAnns.set(imgId, (list = []));
      list.push(i);
      const id = t.id[i]!;
      if (this.annIndex.has(id)) {
        throw new Error(`${this.source}: annotation id ${id} appears twice (annotations ${this.annIndex.get(id)} and ${i})`);
      }
      this.annIndex.set(id, i);
      if (withCats) {
        const catId = t.categoryId[i]!;
        let imgs = this.catToImgs.get(catId);
        if (!imgs) this.catToImgs.set(catId, (imgs = []));
        imgs.push(imgId);
      }
    }
  }

  /** Annotation ids matching all given filters, in pycocotools' order. */
  getAnnIds(filter: AnnIdFilter = {}): number[] {
    const imgIds = asList(filter.imgIds);
    const catIds = asList(filter.catIds);
    const areaRng = filter.areaRng ?? [];
    const t = this.table;
    let rows: ArrayLike<number>;
    if (imgIds.length === 0 && catIds.length === 0 && areaRng.length === 0) {
      rows = allRows(t.n);
    } else {
      if (imgIds.length > 0) {
        const r: number[] = [];
        for (const imgId of imgIds) {
          const list = this.imgToAnns.get(imgId);
          if (list) for (const i of list) r.push(i);
        }
        rows = r;
      } else {
        rows = allRows(t.n);
      }
      if (catIds.length > 0) {
        const set = new Set(catIds);
        rows = Array.from(rows).filter((i) => set.has(t.categoryId[i]!));
      }
      if (areaRng.length > 0) {
        const lo = areaRng[0]!;
        const hi = areaRng[1]!;
        rows = Array.from(rows).filter((i) => t.area[i]! > lo && t.area[i]! < hi);
      }
    }
    const out: number[] = [];
    const crowd = filter.iscrowd;
    for (let j = 0; j < rows.length; j++) {
      const i = rows[j]!;
      if (crowd !== undefined && crowd !== null && t.iscrowd[i] !== Number(crowd)) continue;
      out.push(t.id[i]!);
    }
    return out;
  }

  /** Category ids filtered by names, supercategory names and ids (all optional), in file order. */
  getCatIds(filter: { catNms?: string | string[]; supNms?: string | string[]; catIds?: number | number[] } = {}): number[] {
    const names = filter.catNms === undefined ? [] : Array.isArray(filter.catNms) ? filter.catNms : [filter.catNms];
    const sups = filter.supNms === undefined ? [] : Array.isArray(filter.supNms) ? filter.supNms : [filter.supNms];
    const ids = asList(filter.catIds);
    let cats = this.datasetValue.categories ?? [];
    if (names.length) cats = cats.filter((c) => names.includes(c.name));
    if (sups.length) cats = cats.filter((c) => c.supercategory !== undefined && sups.includes(c.supercategory));
    if (ids.length) cats = cats.filter((c) => ids.includes(c.id));
    return cats.map((c) => c.id);
  }

  /**
   * Image ids: all (in file order) when no filter is given; otherwise those in `imgIds` that hold
   * every category of `catIds` (sorted ascending; pycocotools returns a set's order).
   */
  getImgIds(filter: { imgIds?: number | number[]; catIds?: number | number[] } = {}): number[] {
    const imgIds = asList(filter.imgIds);
    const catIds = asList(filter.catIds);
    if (imgIds.length === 0 && catIds.length === 0) return [...this.imgs.keys()];
    let ids = new Set(imgIds);
    catIds.forEach((catId, i) => {
      const withCat = new Set(this.catToImgs.get(catId) ?? []);
      ids = i === 0 && ids.size === 0 ? withCat : new Set([...ids].filter((id) => withCat.has(id)));
    });
    return [...ids].sort((a, b) => a - b);
  }

  /** Annotations by id (ground truth: the file's objects; results: built objects). */
  loadAnns(ids: number | number[]): CocoAnnotation[] {
    return asList(ids).map((id) => {
      const i = this.annIndex.get(id);
      if (i === undefined) throw new Error(`${this.source}: no annotation with id ${id}`);
      return this.rawAnns ? this.rawAnns[i]! : this.resultRow(i);
    });
  }

  /** Categories by id. */
  loadCats(ids: number | number[]): CocoCategory[] {
    return asList(ids).map((id) => {
      const c = this.cats.get(id);
      if (!c) throw new Error(`${this.source}: no category with id ${id}`);
      return c;
    });
  }

  /** Images by id. */
  loadImgs(ids: number | number[]): CocoImage[] {
    return asList(ids).map((id) => {
      const img = this.imgs.get(id);
      if (!img) throw new Error(`${this.source}: no image with id ${id}`);
      return img;
    });
  }

  private resultRow(i: number): CocoAnnotation {
    const t = this.table;
    const bbox = Array.from(t.bbox.subarray(i * 4, i * 4 + 4));
    const segm = t.segm[i] ?? boxPolygon(bbox);
    const kp = t.keypoints[i];
    if (kp) {
      return { id: t.id[i]!, image_id: t.imageId[i]!, category_id: t.categoryId[i]!, keypoints: kp, score: t.score[i]!, area: t.area[i]!, bbox };
    }
    return {
      id: t.id[i]!,
      image_id: t.imageId[i]!,
      category_id: t.categoryId[i]!,
      bbox,
      score: t.score[i]!,
      area: t.area[i]!,
      iscrowd: 0,
      segmentation: segm as Segmentation,
    };
  }

  /**
   * Loads detection results against this ground truth (pycocotools `loadRes`). Results of the
   * `bbox` kind (the first result has a non-empty bbox) get area = w*h and, where absent, the box as
   * a polygon segmentation; `segm` results get area and (where absent) bbox from the mask. Ids are
   * 1..N, iscrowd 0. Throws, naming the result, on a missing/mistyped field or an unknown image id,
   * and naming this ground truth when it has no `images` array. Scores may be `NaN` / `Infinity` /
   * `-Infinity` (Python writes them bare; {@link readJson} reads them) and are ranked as pycocotools ranks them.
   */
  loadRes(results: string | DetectionResult[], opts: LoadResOptions = {}): COCO {
    const source = typeof results === 'string' ? results : '<results>';
    if (this.datasetValue.images === undefined) {
      // pycocotools fails here with KeyError: 'images' (it copies gt.dataset['images'])
      throw new Error(`${this.source}: the ground truth has no 'images' array, so no result can be matched to an image (pycocotools: KeyError 'images')`);
    }
    const anns = typeof results === 'string' ? readJson(results) : results;
    if (!Array.isArray(anns)) throw new Error(`${source}: results must be a JSON array of objects, got ${typeName(anns)}`);
    if (anns.length === 0 && !opts.allowEmpty) {
      throw new Error(`${source}: the result list is empty (pycocotools fails on it too); pass allowEmpty to evaluate it as no detections`);
    }
    const table = tableFromResults(anns as DetectionResult[], source, this);
    const dataset: CocoDataset = {
      info: this.datasetValue.info ? structuredClone(this.datasetValue.info) : {},
      images: [...(this.datasetValue.images ?? [])],
      categories: structuredClone(this.datasetValue.categories ?? []),
      annotations: undefined as unknown as CocoAnnotation[],
    };
    return new COCO(undefined, { table, dataset, source });
  }

  /** Size of an image, for rasterising its annotations; throws if the image lacks height/width. */
  imageSize(imgId: number): { h: number; w: number } {
    const img = this.imgs.get(imgId);
    if (!img) throw new Error(`${this.source}: annotation refers to image id ${imgId}, which is not in images`);
    if (!Number.isInteger(img.height) || !Number.isInteger(img.width)) {
      throw new Error(`${this.source}: image ${imgId} needs integer height and width to rasterise masks`);
    }
    return { h: img.height, w: img.width };
  }

  /** The annotation's segmentation as an RLE (pycocotools `annToRLE`; polygons are merged). */
  annToRLE(ann: CocoAnnotation): Rle {
    const { h, w } = this.imageSize(ann.image_id);
    const segm = ann.segmentation ?? (ann.bbox ? boxPolygon(ann.bbox) : undefined);
    return segmentationToRle(segm, h, w, `${this.source}: annotation ${ann.id}`);
  }

  /** The annotation as a column-major binary mask `[w * h]` (`x * h + y`), pycocotools `annToMask` order-F. */
  annToMask(ann: CocoAnnotation): { mask: Uint8Array; h: number; w: number } {
    const rle = this.annToRLE(ann);
    return { mask: rleDecode(rle), h: rle.h, w: rle.w };
  }

  /** @internal RLE of table row `i` (for evaluation). */
  rowToRle(i: number): Rle {
    const t = this.table;
    const imgId = t.imageId[i]!;
    const { h, w } = this.imageSize(imgId);
    const segm = t.segm[i] ?? (this.rawAnns ? undefined : boxPolygon(Array.from(t.bbox.subarray(i * 4, i * 4 + 4))));
    if (segm === undefined) throw new Error(`${this.source}: annotation ${t.id[i]} has no segmentation (needed for segm evaluation)`);
    return segmentationToRle(segm, h, w, `${this.source}: annotation ${t.id[i]}`);
  }
}

function boxPolygon(bb: number[]): number[][] {
  const x1 = bb[0]!;
  const y1 = bb[1]!;
  const x2 = bb[0]! + bb[2]!;
  const y2 = bb[1]! + bb[3]!;
  return [[x1, y1, x1, y2, x2, y2, x2, y1]];
}

function allRows(n: number): Int32Array {
  const r = new Int32Array(n);
  for (let i = 0; i < n; i++) r[i] = i;
  return r;
}

function emptyDataset(): CocoDataset {
  return { images: [], annotations: [], categories: [] };
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/** Reads and parses a JSON file, naming the file in every error. */
export function readJson(path: string): any {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return parseJsonWithPythonNumbers(text);
  } catch (e) {
    throw new Error(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * `JSON.parse` that also accepts the bare `NaN`, `Infinity` and `-Infinity` tokens Python's
 * `json.dump` writes for non-finite floats (pycocotools reads such files with `json.load`), as
 * the numbers `NaN`, `Infinity`, `-Infinity`. Tokens inside strings are left alone. Plain JSON
 * takes the fast path (one `JSON.parse`); errors are `JSON.parse`'s own.
 */
export function parseJsonWithPythonNumbers(text: string): any {
  try {
    return JSON.parse(text);
  } catch (e) {
    if (!/NaN|Infinity/.test(text)) throw e;
  }
  // Replace each bare token outside strings by a string marker starting with U+0000 (no results
  // or annotation file holds such a string), then map the markers back.
  const marks: Record<string, number> = { '\u0000NaN': NaN, '\u0000Infinity': Infinity, '\u0000-Infinity': -Infinity };
  let out = '';
  let last = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \\ */) i++;
      else if (c === 34 /* " */) inString = false;
      continue;
    }
    if (c === 34) {
      inString = true;
      continue;
    }
    if (c !== 45 /* - */ && c !== 73 /* I */ && c !== 78 /* N */) continue;
    for (const token of ['-Infinity', 'Infinity', 'NaN']) {
      if (text.startsWith(token, i) && !/[\w$]/.test(text[i + token.length] ?? '') && !/[\w$.]/.test(text[i - 1] ?? '')) {
        out += text.slice(last, i) + JSON.stringify(`\u0000${token}`);
        i += token.length - 1;
        last = i + 1;
        break;
      }
    }
  }
  out += text.slice(last);
  return JSON.parse(out, (_key, value) => (typeof value === 'string' && value.charCodeAt(0) === 0 && value in marks ? marks[value] : value));
}

/** A value for an error message: JSON, but NaN / Infinity shown as such (JSON.stringify writes null). */
function show(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isFinite(x) ? `\u0000${x}` : x))?.replace(/"\\u0000([^"]*)"/g, '$1') ?? String(v);
}

function isNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function validateDataset(ds: unknown, source: string): asserts ds is CocoDataset {
  if (ds === null || typeof ds !== 'object' || Array.isArray(ds)) {
    throw new Error(`${source}: annotation file must hold a JSON object, got ${typeName(ds)}`);
  }
  const d = ds as Record<string, unknown>;
  for (const key of ['images', 'annotations', 'categories']) {
    if (d[key] !== undefined && !Array.isArray(d[key])) throw new Error(`${source}: '${key}' must be an array`);
  }
  ((d.images as unknown[]) ?? []).forEach((img, i) => {
    if (img === null || typeof img !== 'object' || !isNum((img as CocoImage).id)) {
      throw new Error(`${source}: images[${i}] must be an object with a numeric id`);
    }
  });
  ((d.categories as unknown[]) ?? []).forEach((cat, i) => {
    if (cat === null || typeof cat !== 'object' || !isNum((cat as CocoCategory).id)) {
      throw new Error(`${source}: categories[${i}] must be an object with a numeric id`);
    }
  });
}

function newTable(n: number): AnnotationTable {
  return {
    n,
    id: new Float64Array(n),
    imageId: new Float64Array(n),
    categoryId: new Float64Array(n),
    area: new Float64Array(n).fill(NaN),
    iscrowd: new Float64Array(n).fill(NaN),
    bbox: new Float64Array(n * 4).fill(NaN),
    score: new Float64Array(n).fill(NaN),
    segm: new Array(n),
    keypoints: new Array(n),
    numKeypoints: new Float64Array(n).fill(NaN),
  };
}

function tableFromAnnotations(anns: CocoAnnotation[], source: string): AnnotationTable {
  const t = newTable(anns.length);
  anns.forEach((a, i) => {
    const where = () => `${source}: annotations[${i}]`;
    if (a === null || typeof a !== 'object') throw new Error(`${where()} is not an object`);
    for (const key of ['id', 'image_id', 'category_id'] as const) {
      if (!isNum(a[key])) throw new Error(`${where()}: '${key}' must be a number, got ${JSON.stringify(a[key])}`);
    }
    t.id[i] = a.id;
    t.imageId[i] = a.image_id;
    t.categoryId[i] = a.category_id;
    if (a.area !== undefined) {
      if (!isNum(a.area)) throw new Error(`${where()} (id ${a.id}): 'area' must be a number`);
      t.area[i] = a.area;
    }
    if (a.iscrowd !== undefined) {
      const c = a.iscrowd as unknown;
      if (!isNum(c) && typeof c !== 'boolean') throw new Error(`${where()} (id ${a.id}): 'iscrowd' must be 0/1`);
      t.iscrowd[i] = Number(c);
    }
    if (a.bbox !== undefined) {
      checkBox(a.bbox, `${where()} (id ${a.id})`);
      t.bbox.set(a.bbox, i * 4);
    }
    if (a.score !== undefined) t.score[i] = a.score;
    t.segm[i] = a.segmentation;
    if (a.keypoints !== undefined) t.keypoints[i] = checkKeypoints(a.keypoints, `${where()} (id ${a.id})`);
    if (a.num_keypoints !== undefined) {
      if (!isNum(a.num_keypoints)) throw new Error(`${where()} (id ${a.id}): 'num_keypoints' must be a number`);
      t.numKeypoints[i] = a.num_keypoints;
    }
  });
  return t;
}

function checkKeypoints(kp: unknown, where: string): number[] {
  if (!Array.isArray(kp) || kp.length % 3 !== 0 || !kp.every(isNum)) {
    throw new Error(`${where}: 'keypoints' must be [x1, y1, v1, x2, y2, v2, ...] finite numbers`);
  }
  return kp;
}

function checkBox(bb: unknown, where: string): asserts bb is number[] {
  if (!Array.isArray(bb) || bb.length !== 4 || !bb.every(isNum)) {
    throw new Error(`${where}: 'bbox' must be [x, y, width, height] (4 finite numbers), got ${show(bb)}`);
  }
}

/** A result box: 4 numbers, which may be NaN / +-Infinity as pycocotools takes them (its box IoU uses C's fmin/fmax). */
function checkResultBox(bb: unknown, where: string): asserts bb is number[] {
  if (!Array.isArray(bb) || bb.length !== 4 || !bb.every((v) => typeof v === 'number')) {
    throw new Error(`${where}: 'bbox' must be [x, y, width, height] (4 numbers), got ${show(bb)}`);
  }
}

function tableFromResults(anns: DetectionResult[], source: string, gt: COCO): AnnotationTable {
  const t = newTable(anns.length);
  const first = anns[0] as Record<string, unknown> | undefined;
  if (first !== undefined && (first === null || typeof first !== 'object')) throw new Error(`${source}: results[0] is not an object`);
  // pycocotools decides the kind from the first result only
  const kind =
    first === undefined
      ? 'bbox'
      : Array.isArray(first.bbox) && first.bbox.length > 0
        ? 'bbox'
        : 'segmentation' in first
          ? 'segm'
          : 'keypoints' in first
            ? 'keypoints'
            : null;
  if (kind === null) throw new Error(`${source}: results[0] has none of a non-empty 'bbox', 'segmentation' or 'keypoints' (caption results are not supported)`);
  anns.forEach((r, i) => {
    const where = `${source}: results[${i}]`;
    if (r === null || typeof r !== 'object') throw new Error(`${where} is not an object`);
    for (const key of ['image_id', 'category_id'] as const) {
      if (!isNum(r[key])) throw new Error(`${where}: '${key}' must be a finite number, got ${show(r[key])}`);
    }
    // pycocotools takes any float score: NaN / +-Infinity (Python's json.dump writes them bare) sort
    // as numpy's argsort of -score puts them (Infinity first, -Infinity after every finite, NaN last)
    if (typeof r.score !== 'number') throw new Error(`${where}: 'score' must be a number, got ${show(r.score)}`);
    if (!gt.imgs.has(r.image_id)) {
      throw new Error(`${where}: image_id ${r.image_id} is not an image of the ground truth (${gt.source}); results do not correspond to this set`);
    }
    t.id[i] = i + 1;
    t.imageId[i] = r.image_id;
    t.categoryId[i] = r.category_id;
    t.score[i] = r.score;
    t.iscrowd[i] = 0;
    if (kind === 'bbox') {
      checkResultBox(r.bbox, where);
      t.bbox.set(r.bbox, i * 4);
      t.area[i] = r.bbox[2]! * r.bbox[3]!;
      t.segm[i] = r.segmentation;
    } else if (kind === 'keypoints') {
      const kp = checkKeypoints(r.keypoints, where);
      if (kp.length === 0) throw new Error(`${where}: 'keypoints' is empty`);
      let x0 = Infinity;
      let x1 = -Infinity;
      let y0 = Infinity;
      let y1 = -Infinity;
      for (let j = 0; j < kp.length; j += 3) {
        x0 = Math.min(x0, kp[j]!);
        x1 = Math.max(x1, kp[j]!);
        y0 = Math.min(y0, kp[j + 1]!);
        y1 = Math.max(y1, kp[j + 1]!);
      }
      t.area[i] = (x1 - x0) * (y1 - y0);
      t.bbox.set([x0, y0, x1 - x0, y1 - y0], i * 4);
      t.keypoints[i] = kp;
      t.iscrowd[i] = NaN; // pycocotools does not set iscrowd on keypoint results
    } else {
      const s = r.segmentation as unknown;
      if (s === null || typeof s !== 'object' || Array.isArray(s) || typeof (s as CompressedRle).counts !== 'string') {
        throw new Error(`${where}: 'segmentation' must be a compressed RLE {size: [h, w], counts: string} for segm results`);
      }
      const seg = s as CompressedRle;
      if (!Array.isArray(seg.size) || seg.size.length !== 2) throw new Error(`${where}: segmentation.size must be [height, width]`);
      const rle = rleFrString(seg.counts, seg.size[0], seg.size[1]);
      t.area[i] = rleArea(rle);
      if (r.bbox !== undefined) {
        checkBox(r.bbox, where);
        t.bbox.set(r.bbox, i * 4);
      } else {
        t.bbox.set(rleToBbox(rle), i * 4);
      }
      t.segm[i] = seg;
    }
  });
  return t;
}

export { toCompressed };
