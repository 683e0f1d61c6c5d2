/** Pieces shared by the train and eval CLIs. */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedDataset } from '@refconv/engine';

/** The repository root (this file is packages/segment/src/cli/common.ts). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

/** The package root (where `nx run segment:*` runs). */
export const PACKAGE_ROOT = resolve(REPO_ROOT, 'packages', 'segment');

/**
 * CamVid beside the project (engine's `sharedDataset('camvid')`: $REFCONV_SHARED_DATASETS,
 * `../shared/datasets` from the repo root, or /work/shared/datasets). When it is nowhere, the
 * conventional path is the default so the loader's error names it.
 */
export const DEFAULT_CAMVID = (() => {
  try {
    return sharedDataset('camvid');
  } catch {
    return resolve(REPO_ROOT, '..', 'shared', 'datasets', 'camvid');
  }
})();

/** Default folder for runs: `<repo>/runs/segment` (a run is `<repo>/runs/segment/<name>`). */
export const DEFAULT_RUNS = join(REPO_ROOT, 'runs', 'segment');

/** Newest `*.safetensors` checkpoint (by modification time) under `dir`, searched recursively. */
export function newestCheckpoint(dir: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  let best: { file: string; mtime: number } | undefined;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (name === 'last.safetensors' || name === 'best.safetensors') {
        if (!best || st.mtimeMs > best.mtime) best = { file: p, mtime: st.mtimeMs };
      }
    }
  };
  walk(dir);
  return best?.file;
}

/** Parses `HxW` or a single number into `[h, w]`; errors name the option. */
export function parseSize(value: string | number, option: string): [number, number] {
  const s = String(value);
  const m = /^(\d+)(?:x(\d+))?$/.exec(s);
  if (!m) throw new Error(`--${option} must be N or HxW (e.g. 180x240), got '${s}'`);
  const h = Number(m[1]);
  const w = m[2] ? Number(m[2]) : h;
  if (h < 8 || w < 8) throw new Error(`--${option} must be at least 8 pixels per side, got '${s}'`);
  return [h, w];
}
