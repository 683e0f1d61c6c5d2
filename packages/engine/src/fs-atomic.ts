/**
 * Crash-safe file writes. The writer itself lives in `@refconv/core` (`atomic-write.ts`: temp
 * file, fsync, rename, fsync of the directory, stale temporaries removed) so that core's
 * `writeSafetensors` and every engine checkpoint go through one helper; it is re-exported here.
 */
import * as fs from 'node:fs';

export { removeStaleTemporaries, writeFileAtomic } from '@refconv/core';

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
