/** Crash-safe file writes: write a temporary file beside the target, fsync, rename. */
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Writes `data` to `file` so that a reader (or a run killed at any moment) only ever sees
 * the old complete file or the new complete file: the bytes go to a temporary file in the
 * same directory, are flushed to disk, and the temporary file is renamed over the target
 * (rename is atomic within one filesystem). Parent directories are created.
 */
export function writeFileAtomic(file: string, data: Uint8Array | string): void {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'w');
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw new Error(`writing ${file} failed: ${(e as Error).message}`);
  }
}

/** Reads and parses a JSON file, naming the file in any error. */
export function readJsonFile<T = unknown>(file: string): T {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${file} is not valid JSON: ${(e as Error).message}`);
  }
}
