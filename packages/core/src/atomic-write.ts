/**
 * Crash-safe file writes, the one way every checkpoint and weight file of the workspace is
 * written (core's `writeSafetensors`, engine's `writeFileAtomic` / `saveCheckpoint`).
 *
 * Sequence: remove stale temporaries of the same target left by an earlier killed writer
 * (`.<name>.<pid>.<time>.tmp` whose pid is not alive), write the bytes to a new temporary file in
 * the target's directory, fsync it, rename it over the target (atomic within one filesystem),
 * then fsync the directory so the rename itself survives a power cut. A reader, or a run killed
 * at any moment, sees either the old complete file or the new complete file.
 */
import fs from 'node:fs'; // the default export, so tests can observe fsync and inject a failing rename
import * as path from 'node:path';

/** Name pattern of the temporary files written for `base` (`.<base>.<pid>.<ms>.tmp`). */
function tmpPattern(base: string): RegExp {
  const escaped = base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^\\.${escaped}\\.(\\d+)\\.\\d+\\.tmp$`);
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temporary files of `file` left by writers that are no longer running (a process
 * killed between writing and renaming). Temporaries of live processes are kept, since another
 * process may be writing the same target right now. Returns the paths removed.
 */
export function removeStaleTemporaries(file: string): string[] {
  const dir = path.dirname(path.resolve(file));
  const re = tmpPattern(path.basename(file));
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = re.exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    const p = path.join(dir, name);
    fs.rmSync(p, { force: true });
    removed.push(p);
  }
  return removed;
}

/** fsyncs a directory (a no-op where the platform cannot open directories, e.g. Windows). */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL') throw e;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Writes `data` to `file` atomically and durably (see the module doc). Parent directories are
 * created. Errors name the target file; on failure the temporary file is removed and the
 * previous `file` is untouched.
 */
export function writeFileAtomic(file: string, data: Uint8Array | string): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  let fd: number | undefined;
  try {
    fs.mkdirSync(dir, { recursive: true });
    removeStaleTemporaries(file);
    fd = fs.openSync(tmp, 'w');
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
    fsyncDir(dir);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw new Error(`writing ${file} failed: ${(e as Error).message}`);
  }
}
