/** JSON Lines metrics log: one JSON object per line, appended and flushed as it happens. */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Appends records to a `.jsonl` file; every record gets an ISO `time` field. */
export class JsonlLogger {
  readonly file: string;

  /**
   * @param file path of the log; parent directories are created.
   * @param opts.truncate start a new file (default false: append, which is what `--resume` wants).
   */
  constructor(file: string, opts: { truncate?: boolean } = {}) {
    this.file = file;
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    if (opts.truncate) fs.writeFileSync(file, '');
  }

  /** Appends one record (synchronously, so a killed run keeps every line written before). */
  log(record: Record<string, unknown>): void {
    fs.appendFileSync(this.file, JSON.stringify({ time: new Date().toISOString(), ...record }) + '\n');
  }
}

/**
 * Reads a JSONL file back. Blank lines are skipped; a malformed line is an error naming
 * the file and line number, except a truncated last line (a run killed mid-write), which is dropped.
 */
export function readJsonl<T = Record<string, unknown>>(file: string): T[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const out: T[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      out.push(JSON.parse(line) as T);
    } catch (e) {
      const isLast = lines.slice(i + 1).every((l) => l.trim() === '');
      if (!isLast) throw new Error(`${file}:${i + 1}: malformed JSON line: ${(e as Error).message}`);
    }
  });
  return out;
}
