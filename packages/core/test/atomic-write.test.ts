/**
 * The one atomic-write helper: stale temporaries of a killed writer are removed at the next
 * write of the same target (and only those), the file and its directory are fsynced, a failed
 * write leaves the previous file untouched.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { writeFileAtomic } from '../src/atomic-write.js';
import { readSafetensors, writeSafetensors } from '../src/safetensors.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'core-atomic-'));
/** The pid of a process that has exited (so no live writer owns a temp file named with it). */
const deadPid = (): number => spawnSync(process.execPath, ['-e', '0']).pid!;

afterEach(() => vi.restoreAllMocks());

describe('writeFileAtomic', () => {
  it('removes stale temporaries of the same target left by a dead writer, keeps other files', () => {
    const dir = tmp();
    const file = path.join(dir, 'last.safetensors');
    const pid = deadPid();
    const stale = [`.last.safetensors.${pid}.1700000000000.tmp`, `.last.safetensors.${pid}.1700000000001.tmp`];
    const keep = [`.final.safetensors.${pid}.1700000000000.tmp`, `.last.safetensors.${process.pid}.1.tmp`, 'notes.tmp'];
    for (const n of [...stale, ...keep]) fs.writeFileSync(path.join(dir, n), 'half-written');
    writeFileAtomic(file, 'new');
    expect(fs.readFileSync(file, 'utf8')).toBe('new');
    expect(fs.readdirSync(dir).sort()).toEqual(['last.safetensors', ...keep].sort());
  });

  it('writeSafetensors goes through it: stale temporaries removed, file and directory fsynced', () => {
    const dir = tmp();
    const file = path.join(dir, 'w.safetensors');
    fs.writeFileSync(path.join(dir, `.w.safetensors.${deadPid()}.5.tmp`), 'x');
    const synced: number[] = [];
    const realFsync = fs.fsyncSync;
    vi.spyOn(fs, 'fsyncSync').mockImplementation((fd: number) => {
      synced.push(fd);
      realFsync(fd);
    });
    const opened: Array<[string, string]> = [];
    const realOpen = fs.openSync;
    vi.spyOn(fs, 'openSync').mockImplementation(((p: fs.PathLike, flags: fs.OpenMode) => {
      opened.push([String(p), String(flags)]);
      return realOpen(p, flags);
    }) as typeof fs.openSync);
    writeSafetensors(file, { a: { shape: [2], data: Float32Array.from([1, 2]) } });
    expect(fs.readdirSync(dir)).toEqual(['w.safetensors']);
    expect(Array.from(readSafetensors(file).get('a')!.data as Float32Array)).toEqual([1, 2]);
    expect(synced).toHaveLength(2); // the temporary file, then the directory
    expect(opened.map(([p]) => p)).toContain(dir);
  });

  it('a failed write names the file and leaves the previous contents and no temporary', () => {
    const dir = tmp();
    const file = path.join(dir, 'ck.bin');
    writeFileAtomic(file, 'old');
    vi.spyOn(fs, 'renameSync').mockImplementation(() => {
      throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    });
    expect(() => writeFileAtomic(file, 'new')).toThrow(/writing .*ck\.bin failed: ENOSPC/);
    expect(fs.readFileSync(file, 'utf8')).toBe('old');
    expect(fs.readdirSync(dir)).toEqual(['ck.bin']);
  });
});
