/**
 * Where the real datasets that sit beside the project live (`shared/datasets` next to the
 * checkout on the project's machines: hymenoptera, bccd, coco128, camvid). Defaults and tests
 * resolve them here instead of assuming the checkout's location, so a clone anywhere works.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (three levels above this file: packages/engine/src). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Folders searched, in order: $REFCONV_SHARED_DATASETS, <repo>/../shared/datasets, /work/shared/datasets. */
export function sharedDatasetsCandidates(): string[] {
  const list = [path.resolve(REPO_ROOT, '..', 'shared', 'datasets'), '/work/shared/datasets'];
  if (process.env.REFCONV_SHARED_DATASETS) list.unshift(path.resolve(process.env.REFCONV_SHARED_DATASETS));
  return list;
}

/**
 * Path of a shared dataset folder, e.g. `sharedDataset('camvid')`. Throws a clear error naming
 * every place searched when it is not there.
 */
export function sharedDataset(name: string): string {
  const tried = sharedDatasetsCandidates().map((dir) => path.join(dir, name));
  const found = tried.find((p) => fs.existsSync(p));
  if (!found) {
    throw new Error(`dataset '${name}' not found; looked in ${tried.join(', ')}. Set REFCONV_SHARED_DATASETS to the folder that holds it.`);
  }
  return found;
}
