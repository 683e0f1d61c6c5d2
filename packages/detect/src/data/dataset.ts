/**
 * The in-memory form every detection dataset is read into, whatever its on-disk format.
 * Boxes are xyxy in original-image pixels; labels are contiguous indices `0..K-1` into
 * {@link CategoryMap}, which is stored with checkpoints so predictions map back to the
 * dataset's category ids and names.
 */
import type { DatasetSummary } from './validation.js';

/** Contiguous label index -> dataset category id and name. */
export interface CategoryMap {
  /** Dataset category id of label `i` (COCO: 1..90; VOC: 1..K in class order). */
  ids: number[];
  /** Human-readable name of label `i`. */
  names: string[];
}

/** One image with its annotations. */
export interface DetectionRecord {
  /** Image id (COCO `image_id`; VOC: 1-based position in the sorted annotation list). */
  imageId: number;
  /** Absolute path of the image file. */
  file: string;
  width: number;
  height: number;
  /** `[N * 4]` xyxy boxes in pixels. */
  boxes: Float32Array;
  /** `[N]` contiguous labels. */
  labels: Int32Array;
  /** `[N]` 1 for crowd regions (COCO `iscrowd`), ignored in training. */
  iscrowd: Uint8Array;
  /** `[N]` areas used by COCO evaluation (COCO: the annotation's `area`; VOC: w*h). */
  areas: Float32Array;
}

/** A loaded dataset split. */
export interface DetectionDataset {
  /** Where it came from (for messages). */
  source: string;
  records: DetectionRecord[];
  categories: CategoryMap;
  /** Problems found and worked around while reading, one line each (e.g. a degenerate box dropped). */
  warnings: string[];
  /**
   * Counts of boxes clipped / dropped while opening (always set by {@link openDataset} and the
   * readers); log it with `formatDatasetSummary(ds.source, ds.summary)`.
   */
  summary?: DatasetSummary;
}

/** A COCO-format ground-truth object (`instances_*.json` shape) for @refconv/coco-eval. */
export interface CocoGroundTruth {
  images: { id: number; file_name: string; width: number; height: number }[];
  annotations: { id: number; image_id: number; category_id: number; bbox: number[]; area: number; iscrowd: number }[];
  categories: { id: number; name: string }[];
}

/** Converts a dataset to COCO ground truth (xyxy -> xywh), for evaluation of any format. */
export function toCocoGroundTruth(ds: DetectionDataset): CocoGroundTruth {
  const annotations: CocoGroundTruth['annotations'] = [];
  for (const r of ds.records) {
    for (let i = 0; i < r.labels.length; i++) {
      const [x1, y1, x2, y2] = r.boxes.subarray(4 * i, 4 * i + 4);
      annotations.push({
        id: annotations.length + 1,
        image_id: r.imageId,
        category_id: ds.categories.ids[r.labels[i]!]!,
        bbox: [x1!, y1!, x2! - x1!, y2! - y1!],
        area: r.areas[i]!,
        iscrowd: r.iscrowd[i]!,
      });
    }
  }
  return {
    images: ds.records.map((r) => ({ id: r.imageId, file_name: r.file, width: r.width, height: r.height })),
    annotations,
    categories: ds.categories.ids.map((id, i) => ({ id, name: ds.categories.names[i]! })),
  };
}

/** Keeps only the non-crowd boxes of a record (what the training losses see). */
export function trainingTargets(r: DetectionRecord): { boxes: Float32Array; labels: Int32Array } {
  const keep: number[] = [];
  for (let i = 0; i < r.labels.length; i++) if (!r.iscrowd[i]) keep.push(i);
  const boxes = new Float32Array(keep.length * 4);
  keep.forEach((k, j) => boxes.set(r.boxes.subarray(4 * k, 4 * k + 4), 4 * j));
  return { boxes, labels: Int32Array.from(keep, (k) => r.labels[k]!) };
}
