import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { JsonlLogger, readJsonl } from '../src/metrics-log.js';
import { createProgress, formatDuration } from '../src/progress.js';

function fakeStream() {
  const chunks: string[] = [];
  return { chunks, stream: { isTTY: false, write: (s: string) => (chunks.push(s), true) } as unknown as NodeJS.WritableStream };
}

describe('progress (plain mode)', () => {
  it('prints at most one line per interval with rate and ETA, then a summary', () => {
    let t = 0;
    const { chunks, stream } = fakeStream();
    const p = createProgress({ label: 'epoch 1/2', total: 10, stream, logIntervalSec: 5, now: () => t });
    for (let i = 0; i < 10; i++) {
      t += 1000; // 1 s per step, 32 images per step
      p.tick(1, 32, { loss: 1 / (i + 1), lr: 0.1 });
    }
    const elapsed = p.finish({ acc: 0.5 });
    expect(elapsed).toBe(10);
    expect(chunks).toHaveLength(3); // at t = 5 s, 10 s, and the summary
    expect(chunks[0]).toBe('epoch 1/2 5/10 (50%) loss=0.2000 lr=1.00e-1 32.0 img/s ETA 5s\n');
    expect(chunks[2]).toMatch(/^epoch 1\/2 done 10\/10 in 10s loss=0\.1000 lr=1\.00e-1 acc=0\.5000 32\.0 img\/s\n$/);
  });

  it('formats durations', () => {
    expect(formatDuration(5)).toBe('5s');
    expect(formatDuration(125)).toBe('2m05s');
    expect(formatDuration(3725)).toBe('1h02m');
  });
});

describe('JSONL metrics log', () => {
  it('appends records and reads them back, tolerating a torn last line', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'engine-log-')), 'm.jsonl');
    const log = new JsonlLogger(file, { truncate: true });
    log.log({ epoch: 1, loss: 0.5 });
    new JsonlLogger(file).log({ epoch: 2, loss: 0.25 }); // appending (resume)
    fs.appendFileSync(file, '{"epoch": 3, "lo');
    const recs = readJsonl<{ epoch: number; loss: number; time: string }>(file);
    expect(recs.map((r) => [r.epoch, r.loss])).toEqual([[1, 0.5], [2, 0.25]]);
    expect(typeof recs[0]!.time).toBe('string');
    fs.writeFileSync(file, '{"a":1}\nnot json\n{"a":2}\n');
    expect(() => readJsonl(file)).toThrow(/m\.jsonl:2: malformed/);
  });
});
