/** Pieces shared by the train and eval CLIs. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '@refconv/engine';
import type { DetectionDataset } from '../data/dataset.js';
import { COCO_STAT_NAMES, type EvaluationResult } from '../pipeline/evaluate.js';
import { writeVisualization } from '../pipeline/visualize.js';

export { reportWarnings } from '../pipeline/protocol.js';

/** The repository root (CLIs run with the package as cwd under nx). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

/** The BCCD copy shipped with the repository, the default dataset. */
export const DEFAULT_DATA = path.join(REPO_ROOT, 'datasets', 'bccd');

/**
 * Writes the COCO results JSON, a stats JSON and `visualize` annotated PNGs under `outDir`;
 * returns the paths written.
 */
export async function writeEvaluationOutputs(
  outDir: string,
  prefix: string,
  ds: DetectionDataset,
  ev: EvaluationResult,
  visualize: number,
): Promise<{ results: string; stats: string; images: string[] }> {
  fs.mkdirSync(outDir, { recursive: true });
  const results = path.join(outDir, `${prefix}_results.json`);
  writeFileAtomic(results, JSON.stringify(ev.results));
  const stats = path.join(outDir, `${prefix}_stats.json`);
  writeFileAtomic(stats, JSON.stringify(statsObject(ev.stats), null, 2) + '\n');
  const images: string[] = [];
  for (let i = 0; i < Math.min(visualize, ds.records.length); i++) {
    images.push(await writeVisualization(ds.records[i]!, ev.detections[i]!, ds.categories.names, path.join(outDir, `${prefix}_vis`)));
  }
  return { results, stats, images };
}

/** The 12 stats by pycocotools name. */
export function statsObject(stats: number[]): Record<string, number> {
  return Object.fromEntries(COCO_STAT_NAMES.map((n, i) => [n, stats[i]!]));
}
