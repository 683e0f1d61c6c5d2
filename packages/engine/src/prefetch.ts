/** Bounded read-ahead: load items i+1..i+depth while item i is being consumed. */

/**
 * Yields `load(0) ... load(count - 1)` in order while keeping at most `depth` loads in flight,
 * so a training step runs while the next batches are decoded (in worker threads, if `load`
 * uses a {@link WorkerPool}). A failed load rejects when its turn comes; stopping the loop
 * early (break/throw) stops issuing new loads.
 */
export async function* prefetch<T>(count: number, load: (index: number) => Promise<T>, depth = 2): AsyncGenerator<T> {
  if (!Number.isInteger(depth) || depth < 1) throw new Error(`prefetch: depth must be a positive integer, got ${depth}`);
  const inFlight: Promise<T>[] = [];
  let next = 0;
  const issue = () => {
    const p = load(next++);
    p.catch(() => undefined); // rejection is observed when this item is awaited below
    inFlight.push(p);
  };
  while (next < count && inFlight.length < depth) issue();
  while (inFlight.length > 0) {
    const item = await inFlight.shift()!;
    if (next < count) issue();
    yield item;
  }
}

/** Time a consumer spent waiting on an async iterable, filled in by {@link timeWaits}. */
export interface WaitMeter {
  /** Milliseconds summed over every `next()` of the iteration. */
  ms: number;
}

/**
 * Passes `source` through unchanged and adds to `meter.ms` how long each `next()` took to resolve,
 * i.e. how long a training loop waited for a batch that prefetching did not hide. The loop body's
 * own time is not counted (the generator is suspended at `yield` meanwhile). Breaking out of the
 * loop closes `source`.
 */
export async function* timeWaits<T>(source: AsyncIterable<T>, meter: WaitMeter, now: () => number = () => performance.now()): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  let done = false;
  try {
    for (;;) {
      const t0 = now();
      const r = await it.next();
      meter.ms += now() - t0;
      if (r.done) {
        done = true;
        return;
      }
      yield r.value;
    }
  } finally {
    if (!done) await it.return?.();
  }
}
