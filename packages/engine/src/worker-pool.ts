/**
 * A small pool of worker threads that call exported functions of a module, used to decode
 * and augment images off the main thread (sharp's own threads do the pixel work; the
 * workers keep the JS side of decoding, cropping and normalising off the training loop).
 *
 * The task module is any ES module (`.ts` works too: the worker registers tsx first) whose
 * exports are async or sync functions taking structured-cloneable arguments. Typed arrays in
 * a result are transferred, not copied.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as os from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/** Options of {@link WorkerPool}. */
export interface WorkerPoolOptions {
  /** Path or file URL of the module whose exports the workers call. */
  module: string | URL;
  /** Number of threads (default: min(4, available cores)). */
  size?: number;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

// Runs inside each worker (CommonJS eval script): load tsx when the task module is
// TypeScript, import the module, then answer {id, fn, args} messages.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
function transferables(value, out, depth) {
  if (depth > 4 || value === null || typeof value !== 'object') return out;
  if (ArrayBuffer.isView(value)) { if (!out.includes(value.buffer) && value.buffer instanceof ArrayBuffer) out.push(value.buffer); return out; }
  for (const v of Array.isArray(value) ? value : Object.values(value)) transferables(v, out, depth + 1);
  return out;
}
(async () => {
  try {
    if (workerData.tsxApi) (await import(workerData.tsxApi)).register();
    const mod = await import(workerData.moduleUrl);
    parentPort.on('message', async ({ id, fn, args }) => {
      try {
        if (typeof mod[fn] !== 'function') throw new Error('worker module ' + workerData.moduleUrl + ' has no exported function ' + fn);
        const result = await mod[fn](...args);
        parentPort.postMessage({ id, result }, transferables(result, [], 0));
      } catch (e) {
        parentPort.postMessage({ id, error: (e && e.message) || String(e) });
      }
    });
    parentPort.postMessage({ ready: true });
  } catch (e) {
    parentPort.postMessage({ ready: false, error: (e && e.stack) || String(e) });
  }
})();
`;

/** File URL of tsx's ESM `register()` API, read from tsx's package exports. */
function tsxEsmApiUrl(): string {
  const require = createRequire(import.meta.url);
  const pkgFile = require.resolve('tsx/package.json');
  const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8')) as { exports: Record<string, { import?: { default?: string } }> };
  const rel = pkg.exports['./esm/api']?.import?.default;
  if (!rel) throw new Error(`WorkerPool: cannot find tsx's ./esm/api export in ${pkgFile}`);
  return pathToFileURL(path.join(path.dirname(pkgFile), rel)).href;
}

/** A fixed-size pool of worker threads; tasks are queued and given to idle workers. */
export class WorkerPool {
  readonly size: number;
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: Array<{ id: number; fn: string; args: unknown[] }> = [];
  private readonly pending = new Map<number, Pending>();
  private readonly ready: Promise<void>;
  private nextId = 0;
  private closed = false;
  private failure: Error | undefined;

  constructor(opts: WorkerPoolOptions) {
    this.size = opts.size ?? Math.max(1, Math.min(4, os.availableParallelism()));
    if (!Number.isInteger(this.size) || this.size < 1) throw new Error(`WorkerPool: size must be a positive integer, got ${opts.size}`);
    const moduleUrl = opts.module instanceof URL ? opts.module.href : opts.module.startsWith('file:') ? opts.module : pathToFileURL(opts.module).href;
    const isTs = /\.(c|m)?ts$/.test(moduleUrl);
    const tsxApi = isTs ? tsxEsmApiUrl() : undefined;
    const starts: Promise<void>[] = [];
    for (let i = 0; i < this.size; i++) {
      const w = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { moduleUrl, tsxApi },
        // source-condition exports let workspace packages resolve to their .ts sources
        execArgv: isTs ? ['--conditions=@refconv/source'] : [],
      });
      this.workers.push(w);
      starts.push(this.attach(w, moduleUrl));
    }
    this.ready = Promise.all(starts).then(() => undefined);
    this.ready.catch(() => undefined); // surfaced by call()
  }

  private attach(w: Worker, moduleUrl: string): Promise<void> {
    return new Promise((resolveReady, rejectReady) => {
      w.on('message', (msg: { ready?: boolean; id?: number; result?: unknown; error?: string }) => {
        if (msg.ready !== undefined) {
          if (msg.ready) {
            this.idle.push(w);
            resolveReady();
            this.pump();
          } else rejectReady(new Error(`worker could not load ${moduleUrl}: ${msg.error}`));
          return;
        }
        const p = this.pending.get(msg.id!);
        this.pending.delete(msg.id!);
        if (msg.error !== undefined) p?.reject(new Error(msg.error));
        else p?.resolve(msg.result);
        this.idle.push(w);
        this.pump();
      });
      w.on('error', (e) => {
        this.failure = new Error(`worker thread crashed: ${e.message}`);
        rejectReady(this.failure);
        for (const p of this.pending.values()) p.reject(this.failure);
        this.pending.clear();
      });
    });
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const task = this.queue.shift()!;
      w.postMessage(task);
    }
  }

  /** Calls the exported function `fn` of the task module with `args` in a worker. */
  async call<T>(fn: string, ...args: unknown[]): Promise<T> {
    if (this.closed) throw new Error('WorkerPool: call after close()');
    if (this.failure) throw this.failure;
    await this.ready;
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.queue.push({ id, fn, args });
      this.pump();
    });
  }

  /** Terminates all workers; pending calls are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new Error('WorkerPool closed'));
    this.pending.clear();
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
