/**
 * Fixed, seeded image batches for the data-dependent analyses, read with @refconv/classify's
 * dataset readers and eval transform (Resize + CenterCrop + normalise with the dataset's mean/std:
 * Fashion-MNIST 0.286 / 0.353, ImageNet's otherwise), so the pixels are exactly what
 * `classify:eval` feeds the model.
 */
import { Rng } from '@refconv/engine';
import { BatchLoader, defaultConfig, prepareData } from '@refconv/classify';

/** A batch of normalised images in the model's input space. */
export interface ImageBatch {
  /** NHWC pixels `[n, size, size, channels]`, normalised `(x/255 - mean) / std`. */
  x: Float32Array;
  /** `[n]` class indices. */
  labels: Int32Array;
  n: number;
  size: number;
  channels: number;
  /** Per-channel mean and std of the normalisation (to map [0, 1] pixel bounds into input space). */
  mean: number[];
  std: number[];
  /** Dataset indices of the images, in batch order. */
  indices: number[];
}

/** Options of {@link loadImageBatch}. */
export interface ImageBatchOptions {
  /** Dataset folder or `fashion-mnist` (as classify's `--data`). */
  data: string;
  format?: 'auto' | 'fashion-mnist' | 'imagefolder';
  split: 'train' | 'val';
  /** Model input size (the crop). */
  inputSize: number;
  /** Images to take (fewer when the split is smaller). */
  n: number;
  /** The images are the first n of a permutation drawn from `Rng(seed)`. */
  seed: number;
}

/** Loads n images of a split, chosen by a seeded permutation, through the eval transform. */
export async function loadImageBatch(o: ImageBatchOptions): Promise<ImageBatch> {
  const cfg = { ...defaultConfig(), data: o.data, format: o.format ?? 'auto', inputSize: o.inputSize, trainLimit: undefined, valLimit: undefined };
  const p = await prepareData(cfg);
  const split = o.split === 'train' ? p.train : p.val;
  const order = new Rng(o.seed).permutation(split.size).slice(0, Math.min(o.n, split.size));
  const loader = new BatchLoader({ batchSize: Math.max(1, order.length), workers: 0 });
  try {
    for await (const b of loader.batches(split, order, p.evalTransform, () => 0)) {
      return { x: b.x, labels: b.labels, n: b.n, size: o.inputSize, channels: p.data.channels, mean: [...p.evalTransform.mean], std: [...p.evalTransform.std], indices: b.indices };
    }
  } finally {
    await loader.close();
  }
  throw new Error(`${o.data}: the ${o.split} split is empty`);
}
