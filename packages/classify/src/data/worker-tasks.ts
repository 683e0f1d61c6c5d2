/**
 * Functions run inside the loader's worker threads (see `WorkerPool`): decode and transform
 * a batch of images into one NHWC Float32Array.
 */
import type { ImageSource } from '@refconv/engine';
import { applyTransform, outputSize, type TransformSpec } from './transforms.js';

/** One image of a batch request. */
export interface BatchItem {
  src: ImageSource;
  /** Seed of this sample's augmentation stream. */
  seed: number;
}

/** A decoded batch: `x` holds `ok.length` images of `[size, size, channels]`; failed items are listed and left out. */
export interface LoadedBatch {
  x: Float32Array;
  /** Positions (within the request) of the images that decoded; `x` holds them in order. */
  ok: number[];
  /** Positions and messages of the images that failed. */
  failed: Array<{ pos: number; error: string }>;
}

/** Decodes and transforms `items` (concurrently; sharp runs the pixel work on its own threads). */
export async function loadBatch(items: BatchItem[], spec: TransformSpec): Promise<LoadedBatch> {
  const size = outputSize(spec);
  const per = size * size * spec.channels;
  const results = await Promise.allSettled(items.map((it) => applyTransform(it.src, spec, it.seed)));
  const ok: number[] = [];
  const failed: LoadedBatch['failed'] = [];
  results.forEach((r, pos) => (r.status === 'fulfilled' ? ok.push(pos) : failed.push({ pos, error: (r.reason as Error).message ?? String(r.reason) })));
  const x = new Float32Array(ok.length * per);
  ok.forEach((pos, j) => {
    const r = results[pos] as PromiseFulfilledResult<Float32Array>;
    if (r.value.length !== per) throw new Error(`loadBatch: transform produced ${r.value.length} values, expected ${per}`);
    x.set(r.value, j * per);
  });
  return { x, ok, failed };
}
