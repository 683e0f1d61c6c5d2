import { describe, expect, it } from 'vitest';
import { prefetch, timeWaits, type WaitMeter } from '../src/prefetch.js';

/** A fake clock: loads and loop bodies advance it by known amounts, so waits are exact. */
function fakeClock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe('timeWaits', () => {
  it('counts the time spent in next(), not in the loop body', async () => {
    const clock = fakeClock();
    async function* source() {
      for (let i = 0; i < 4; i++) {
        clock.advance(5 + i); // the "load" of item i
        yield i;
      }
      clock.advance(2); // the final next() that reports done
    }
    const meter: WaitMeter = { ms: 0 };
    const seen: number[] = [];
    for await (const v of timeWaits(source(), meter, clock.now)) {
      seen.push(v);
      clock.advance(100); // the training step
    }
    expect(seen).toEqual([0, 1, 2, 3]);
    expect(meter.ms).toBe(5 + 6 + 7 + 8 + 2);
  });

  it('closes the source when the loop stops early', async () => {
    let closed = false;
    async function* source() {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        closed = true;
      }
    }
    const meter: WaitMeter = { ms: 0 };
    for await (const v of timeWaits(source(), meter)) if (v === 2) break;
    expect(closed).toBe(true);
  });

  it('passes prefetched items through in order', async () => {
    const meter: WaitMeter = { ms: 0 };
    const out: number[] = [];
    for await (const v of timeWaits(prefetch(5, async (i) => i * i, 2), meter)) out.push(v);
    expect(out).toEqual([0, 1, 4, 9, 16]);
    expect(meter.ms).toBeGreaterThanOrEqual(0);
  });
});
