/**
 * Batch loading for training and evaluation: batches are decoded in worker threads (or on
 * the main thread with `workers: 0`) and prefetched `prefetch` batches ahead of the consumer.
 * Unreadable images stop the run with the file's name, or with `skipBad` are left out and
 * recorded.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { prefetch, WorkerPool, type ImageSource } from '@refconv/engine';
import type { Split } from './dataset.js';
import { outputSize, type TransformSpec } from './transforms.js';
import { loadBatch, type BatchItem, type LoadedBatch } from './worker-tasks.js';

/** Options of {@link BatchLoader}. */
export interface LoaderOptions {
  batchSize: number;
  /** Worker threads (0 = decode on the main thread). */
  workers: number;
  /** Batches decoded ahead of the consumer (default 2). */
  prefetch?: number;
  /** Leave out unreadable images instead of stopping (they are recorded in `badImages`). */
  skipBad?: boolean;
}

/** A batch ready for the model. */
export interface Batch {
  /** NHWC pixels of `n` images. */
  x: Float32Array;
  /** `[n]` class indices. */
  labels: Int32Array;
  n: number;
  /** Dataset indices of the images in this batch. */
  indices: number[];
}

/** A file that could not be read, with the reason. */
export interface BadImage {
  file: string;
  error: string;
}

/**
 * In-memory images are views into one large buffer (all of Fashion-MNIST); posting a view to
 * a worker would structured-clone that whole buffer, so send a copy of just the pixels.
 */
function detach(src: ImageSource): ImageSource {
  return typeof src === 'string' ? src : { ...src, data: src.data.slice() };
}

/** Loads batches of a split in a given order. */
export class BatchLoader {
  private pool: WorkerPool | undefined;
  /** Every unreadable image met so far (only with `skipBad`). */
  readonly badImages: BadImage[] = [];

  constructor(private readonly opts: LoaderOptions) {
    if (!(opts.batchSize >= 1)) throw new Error(`batch size must be >= 1, got ${opts.batchSize}`);
    // the task module sits beside this file, as .ts when run from source and .js when built
    const taskModule = new URL(`./worker-tasks${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url);
    if (opts.workers > 0) this.pool = new WorkerPool({ module: taskModule, size: opts.workers });
  }

  /**
   * Batches of `split` in `order` (dataset indices), transformed by `spec`; sample at
   * position p of the order gets augmentation seed `seedOf(p)`.
   */
  async *batches(split: Split, order: number[], spec: TransformSpec, seedOf: (pos: number) => number): AsyncGenerator<Batch> {
    const bs = this.opts.batchSize;
    const count = Math.ceil(order.length / bs);
    const per = outputSize(spec) ** 2 * spec.channels;
    const load = async (b: number): Promise<Batch> => {
      const idx = order.slice(b * bs, (b + 1) * bs);
      const items: BatchItem[] = idx.map((i, k) => ({ src: this.pool ? detach(split.source(i)) : split.source(i), seed: seedOf(b * bs + k) }));
      const r: LoadedBatch = this.pool ? await this.pool.call<LoadedBatch>('loadBatch', items, spec) : await loadBatch(items, spec);
      for (const f of r.failed) {
        const file = split.describe(idx[f.pos]!);
        const error = f.error.includes(file) ? f.error : `${file}: ${f.error}`;
        if (!this.opts.skipBad) throw new Error(`${error}\n(pass --skip-bad-images to leave unreadable images out and count them in the report)`);
        this.badImages.push({ file, error });
      }
      const kept = r.ok.map((pos) => idx[pos]!);
      if (r.x.length !== kept.length * per) throw new Error(`loader: batch ${b} has ${r.x.length} values for ${kept.length} images`);
      return { x: r.x, labels: Int32Array.from(kept, (i) => split.label(i)), n: kept.length, indices: kept };
    };
    yield* prefetch(count, load, this.opts.prefetch ?? 2);
  }

  /** Images per batch. */
  get batchSize(): number {
    return this.opts.batchSize;
  }

  /** Stops the worker threads. */
  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = undefined;
  }
}
