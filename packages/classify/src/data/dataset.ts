/** Dataset abstraction shared by the Fashion-MNIST and ImageFolder readers. */
import type { ImageSource } from '@refconv/engine';

/** One split (train or val) of a classification dataset. */
export interface Split {
  /** Number of samples. */
  readonly size: number;
  /** The image of sample i (a file path, or pixels for in-memory datasets). */
  source(i: number): ImageSource;
  /** The class index of sample i. */
  label(i: number): number;
  /** Human-readable origin of sample i for error messages. */
  describe(i: number): string;
}

/** A classification dataset with a train and a validation split. */
export interface ClassificationData {
  /** Name for reports, e.g. `fashion-mnist` or the folder name. */
  name: string;
  /** Where it was read from. */
  root: string;
  /** Class names in label-index order (sorted folder names for ImageFolder). */
  classNames: string[];
  /** 1 (grey) or 3 (RGB). */
  channels: 1 | 3;
  /** Native image size when all images share one (Fashion-MNIST: 28). */
  nativeSize?: number;
  train: Split;
  val: Split;
}

/** A split restricted to the first `limit` samples of a (stratification-free) index list. */
export function subsetSplit(split: Split, indices: number[]): Split {
  return {
    size: indices.length,
    source: (i) => split.source(indices[i]!),
    label: (i) => split.label(indices[i]!),
    describe: (i) => split.describe(indices[i]!),
  };
}

/** Per-class sample counts of a split. */
export function classCounts(split: Split, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < split.size; i++) counts[split.label(i)]!++;
  return counts;
}
