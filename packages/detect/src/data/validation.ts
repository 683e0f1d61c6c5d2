/**
 * Checks shared by the dataset readers, run over every record when a split is opened (before the
 * first training step):
 *
 * - data that is simply wrong (truncated XML, a missing or non-numeric field, `xmax < xmin`, a
 *   class name outside the class list, an annotation of an image that does not exist, ...) is
 *   collected over the whole split and thrown as one {@link DatasetValidationError} that names the
 *   file, the record and the field of every problem;
 * - what torchvision / mmdetection fix by convention is fixed here and counted in a
 *   {@link DatasetSummary}: boxes partly outside the image are clipped to it, zero-area boxes and
 *   boxes entirely outside the image are dropped (and, with `dropUnknownClasses`, boxes whose class
 *   is not in the list).
 */
import { DatasetProblemsError } from '@refconv/engine';

/** Counts of what was fixed while opening a split; the training log prints it (see {@link formatDatasetSummary}). */
export interface DatasetSummary {
  /** Images (records) in the split. */
  images: number;
  /** Boxes read from the annotations, before any drop. */
  boxesRead: number;
  /** Boxes kept (what training and evaluation see), crowd / difficult ones included. */
  boxesKept: number;
  /** Boxes partly outside the image, clipped to `[0, width] x [0, height]`. */
  clipped: number;
  /** Boxes with zero width or height, dropped. */
  droppedZeroArea: number;
  /** Boxes entirely outside the image (zero area after clipping), dropped. */
  droppedOutside: number;
  /** Boxes whose class is not in the class list, dropped (only with `dropUnknownClasses`). */
  droppedUnknownClass: number;
  /** Kept boxes per class name, in label order. */
  perClass: Record<string, number>;
  /** Where the class list came from, e.g. `--classes`, `the detector` (its checkpoint's list), `the file's categories`, `the annotations of split train`. */
  classesFrom: string;
}

/** An empty summary for `classesFrom`. */
export function emptySummary(classesFrom: string, classNames: readonly string[]): DatasetSummary {
  return {
    images: 0,
    boxesRead: 0,
    boxesKept: 0,
    clipped: 0,
    droppedZeroArea: 0,
    droppedOutside: 0,
    droppedUnknownClass: 0,
    perClass: Object.fromEntries(classNames.map((n) => [n, 0])),
    classesFrom,
  };
}

/** One line for the run's log: `<source>: 205 images, 4888 boxes read, 4886 kept; clipped 0, dropped: 2 zero-area, ...`. */
export function formatDatasetSummary(source: string, s: DatasetSummary): string {
  const perClass = Object.entries(s.perClass)
    .map(([n, c]) => `${n} ${c}`)
    .join(', ');
  return (
    `${source}: ${s.images} images, ${s.boxesRead} boxes read, ${s.boxesKept} kept; clipped to the image ${s.clipped}; ` +
    `dropped ${s.droppedZeroArea} zero-area, ${s.droppedOutside} outside the image, ${s.droppedUnknownClass} of unknown classes; ` +
    `classes (from ${s.classesFrom}): ${perClass}`
  );
}

export { MAX_LISTED_PROBLEMS } from '@refconv/engine';

/** Every problem found while opening a detection split, one `file: record: field ...` line each. */
export class DatasetValidationError extends DatasetProblemsError {
  constructor(source: string, problems: string[]) {
    super(source, problems, 'in the annotations, found when the split was opened');
    this.name = 'DatasetValidationError';
  }
}

/** What {@link sanitizeBox} decided. */
export type BoxFate = 'kept' | 'clipped' | 'zero-area' | 'outside';

/**
 * Clips an xyxy box to `[0, width] x [0, height]` in place (torchvision's `clip_boxes_to_image`)
 * and says what happened. Call only with `x2 >= x1`, `y2 >= y1` (anything else is a data error).
 * Zero width or height: `zero-area`; nothing left after clipping: `outside`.
 */
export function sanitizeBox(box: [number, number, number, number], width: number, height: number): BoxFate {
  const [x1, y1, x2, y2] = box;
  if (x2 === x1 || y2 === y1) return 'zero-area';
  const c = [Math.min(Math.max(x1, 0), width), Math.min(Math.max(y1, 0), height), Math.min(Math.max(x2, 0), width), Math.min(Math.max(y2, 0), height)] as const;
  if (c[2] <= c[0] || c[3] <= c[1]) return 'outside';
  if (c[0] === x1 && c[1] === y1 && c[2] === x2 && c[3] === y2) return 'kept';
  box[0] = c[0];
  box[1] = c[1];
  box[2] = c[2];
  box[3] = c[3];
  return 'clipped';
}

/** Strict number parse of an XML text or JSON value: a decimal number (no empty string, no `12px`), finite. */
export function parseNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * Checks a class list given by the user or a checkpoint: non-empty, no empty or duplicate names.
 * @throws naming `from` and the bad entry
 */
export function checkClassList(classes: readonly string[], from: string): void {
  if (classes.length === 0) throw new Error(`${from}: the class list is empty`);
  const seen = new Set<string>();
  classes.forEach((c, i) => {
    if (c.trim() === '') throw new Error(`${from}: class ${i + 1} is an empty name`);
    if (seen.has(c)) throw new Error(`${from}: class '${c}' appears twice`);
    seen.add(c);
  });
}

/**
 * Class names that differ only in letter case or surrounding spaces (`rbc` next to `RBC`): with a
 * class list taken from the annotations themselves, such a name is almost always a typo that
 * would silently become a class of its own. Returns one message per clash.
 */
export function caseClashes(names: Iterable<string>): string[] {
  const byKey = new Map<string, string[]>();
  for (const n of names) {
    const k = n.trim().toLowerCase();
    byKey.set(k, [...(byKey.get(k) ?? []), n]);
  }
  return [...byKey.values()].filter((v) => v.length > 1).map((v) => v.map((n) => `'${n}'`).join(' and '));
}
