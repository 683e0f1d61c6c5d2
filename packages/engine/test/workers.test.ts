import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { prefetch } from '../src/prefetch.js';
import { WorkerPool } from '../src/worker-pool.js';

const pool = new WorkerPool({ module: new URL('./fixtures/tasks.ts', import.meta.url), size: 2 });
afterAll(() => pool.close());

describe('WorkerPool', () => {
  it('runs exported functions in worker threads and returns typed arrays', async () => {
    expect(await Promise.all([1, 2, 3, 4].map((n) => pool.call<number>('square', n)))).toEqual([1, 4, 9, 16]);
    const arr = await pool.call<Float32Array>('filled', 5, 2.5);
    expect(arr).toBeInstanceOf(Float32Array);
    expect(Array.from(arr)).toEqual([2.5, 2.5, 2.5, 2.5, 2.5]);
    const r = await Promise.all([0, 1, 2, 3].map((n) => pool.call<{ thread: number }>('slowIdentity', n, 50)));
    expect(new Set(r.map((x) => x.thread)).size).toBe(2); // both workers were used
  });

  it('decodes images with sharp inside the workers', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-w-'));
    const file = path.join(dir, 'px.png');
    await sharp(Buffer.from([10, 20, 30, 40, 50, 60]), { raw: { width: 2, height: 1, channels: 3 } }).png().toFile(file);
    expect(await pool.call<number>('decodeSum', file)).toBe(210);
  });

  it('reports task errors and unknown functions', async () => {
    await expect(pool.call('fail', 'img_001.jpg')).rejects.toThrow(/task failed on img_001\.jpg/);
    await expect(pool.call('nope')).rejects.toThrow(/no exported function nope/);
    expect(await pool.call<number>('square', 3)).toBe(9); // the pool still works afterwards
  });
});

describe('prefetch', () => {
  it('yields in order and never has more than depth loads in flight', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const load = async (i: number) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, (7 - i) * 3)); // later items finish first
      inFlight--;
      return i;
    };
    const got: number[] = [];
    for await (const v of prefetch(7, load, 3)) got.push(v);
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(maxInFlight).toBe(3);
  });

  it('loads ahead while the consumer works', async () => {
    const started: number[] = [];
    const it = prefetch(4, async (i) => (started.push(i), i), 2);
    await it.next();
    expect(started).toEqual([0, 1, 2]); // item 0 consumed, 1 and 2 already loading
    await it.return(undefined);
  });

  it('propagates a failed load when its turn comes', async () => {
    const got: number[] = [];
    const run = async () => {
      for await (const v of prefetch(5, async (i) => {
        if (i === 2) throw new Error('broken batch 2');
        return i;
      }, 2)) got.push(v);
    };
    await expect(run()).rejects.toThrow(/broken batch 2/);
    expect(got).toEqual([0, 1]);
  });
});
