/** Batches of prepared images and targets, decoded ahead of the training step. */
import * as tf from '@tensorflow/tfjs';
import { prefetch } from '@refconv/engine';
import { trainingTargets, type DetectionRecord } from '../data/dataset.js';
import { batchImages, prepareImage, roundUp, type PreparedImage, type ResizeOptions } from '../data/transforms.js';
import type { BatchGeometry, ImageTargets } from '../models/detector.js';

/** A batch on the host: images decoded, boxes in the resized frame (crowd boxes removed). */
export interface HostBatch {
  records: DetectionRecord[];
  images: PreparedImage[];
  targets: ImageTargets[];
  geometry: BatchGeometry;
}

/** Decodes one batch; `flips[i]` mirrors image i. */
export async function loadBatch(records: DetectionRecord[], resize: ResizeOptions, flips?: boolean[]): Promise<HostBatch> {
  const images = await Promise.all(
    records.map((r, i) => {
      const t = trainingTargets(r);
      return prepareImage(r.file, t.boxes, { ...resize, flip: flips?.[i] ?? false });
    }),
  );
  const padded: [number, number] = [roundUp(Math.max(...images.map((i) => i.height)), 32), roundUp(Math.max(...images.map((i) => i.width)), 32)];
  return {
    records,
    images,
    targets: images.map((img, i) => ({ boxes: img.boxes, labels: trainingTargets(records[i]!).labels })),
    geometry: { padded, resized: images.map((i) => [i.height, i.width]), original: images.map((i) => i.originalSize) },
  };
}

/** The batch's image tensor `[B, H, W, 3]` (caller disposes). */
export function batchTensor(b: HostBatch): tf.Tensor4D {
  return batchImages(b.images, 32);
}

/**
 * Iterates batches of `order` (indices into `records`) with read-ahead. `flip(i)` decides the
 * flip of the i-th image of the epoch (drawn up front so the order of decoding does not change it).
 */
export function iterateBatches(
  records: DetectionRecord[],
  order: number[],
  batchSize: number,
  resize: ResizeOptions,
  flips?: boolean[],
): AsyncGenerator<HostBatch> {
  const count = Math.ceil(order.length / batchSize);
  return prefetch(count, (b) => {
    const idx = order.slice(b * batchSize, (b + 1) * batchSize);
    return loadBatch(
      idx.map((i) => records[i]!),
      resize,
      flips?.slice(b * batchSize, (b + 1) * batchSize),
    );
  });
}
