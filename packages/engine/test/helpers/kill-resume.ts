/**
 * The kill -9 / resume scenario the pipelines' CLI tests share: run a training CLI to completion,
 * run it again and SIGKILL it as soon as its first `last.safetensors` exists, then resume it.
 * The caller compares the two runs' files.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'vitest';
import { loadCheckpoint } from '../../src/checkpoint.js';
import type { EpochRecord } from '../../src/epoch-loop.js';

/** What {@link killAndResume} leaves behind. */
export interface KillResumeRun {
  /** Output folders of the uninterrupted and of the killed-and-resumed run. */
  fullDir: string;
  killedDir: string;
  /** The uninterrupted run. */
  full: SpawnSyncReturns<string>;
  /** The epoch stored in `last.safetensors` when the second run was killed. */
  interrupted: number;
  /** Whether the killed run had already written `final.safetensors` (it should not have). */
  finalBeforeResume: boolean;
  /** The `--resume` run. */
  resumed: SpawnSyncReturns<string>;
}

/**
 * Runs `node ...args(fullDir)`, then `node ...args(killedDir)` killed (SIGKILL, or SIGTERM as a
 * scheduler preempts, which must end in exit code 75) after its first checkpoint
 * (`lastFile(killedDir)`), then `node ...args(killedDir) --resume`, all with `cwd`, and checks that
 * each step did what it should (the uninterrupted run and the resume exit 0, the kill came before
 * the last of `epochs` epochs and before `final.safetensors`, the resume says where it resumed).
 */
export async function killAndResume(
  cwd: string, args: (out: string) => string[], epochs: number, lastFile: (out: string) => string = (o) => path.join(o, 'last.safetensors'),
  signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL',
): Promise<KillResumeRun> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kill-resume-'));
  const fullDir = path.join(root, 'full');
  const killedDir = path.join(root, 'killed');
  const full = spawnSync(process.execPath, args(fullDir), { cwd, encoding: 'utf8' });
  expect(full.status, full.stderr).toBe(0);
  const child = spawn(process.execPath, args(killedDir), { cwd, stdio: 'ignore' });
  const last = lastFile(killedDir);
  while (!fs.existsSync(last)) await new Promise((res) => setTimeout(res, 20));
  child.kill(signal);
  const exitCode = await new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  // SIGTERM (a scheduler's preemption): the run stops after its current step with the exit code
  // that asks a Slurm script to requeue it (75).
  if (signal === 'SIGTERM') expect(exitCode, 'exit code after SIGTERM').toBe(75);
  const interrupted = loadCheckpoint(last).state.epoch;
  expect(interrupted, 'the run finished before it could be killed').toBeLessThan(epochs);
  const finalBeforeResume = fs.existsSync(path.join(path.dirname(last), 'final.safetensors'));
  expect(finalBeforeResume).toBe(false);
  const resumed = spawnSync(process.execPath, [...args(killedDir), '--resume'], { cwd, encoding: 'utf8' });
  expect(resumed.status, resumed.stderr).toBe(0);
  expect(resumed.stdout + resumed.stderr).toMatch(new RegExp(`resuming from .*epoch ${interrupted}/${epochs}`));
  return { fullDir, killedDir, full, interrupted, finalBeforeResume, resumed };
}

/**
 * Requires the checkpoints `files` (relative to each run folder) of two runs to hold the same step,
 * the same weight names and bit-identical weights, and their epoch histories to agree on `pick`.
 */
export function expectSameCheckpoints(fullDir: string, killedDir: string, files: string[], pick: (h: EpochRecord) => unknown): void {
  for (const file of files) {
    const a = loadCheckpoint(path.join(fullDir, file));
    const b = loadCheckpoint(path.join(killedDir, file));
    expect(b.state.step, file).toBe(a.state.step);
    expect([...b.weights.keys()], file).toEqual([...a.weights.keys()]);
    for (const [name, t] of a.weights) expect(Array.from(b.weights.get(name)!.data as Float32Array), `${file} ${name}`).toEqual(Array.from(t.data as Float32Array));
    const hist = (c: typeof a) => (c.state.extra!.loop as { history: EpochRecord[] }).history.map(pick);
    expect(hist(b), file).toEqual(hist(a));
  }
}
