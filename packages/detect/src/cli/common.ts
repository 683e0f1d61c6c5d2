/** Pieces shared by the train and eval CLIs. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '@refconv/engine';
import type { DetectionDataset } from '../data/dataset.js';
import { formatDatasetSummary } from '../data/validation.js';
import { COCO_STAT_NAMES, type EvaluationResult } from '../pipeline/evaluate.js';
import { writeVisualization } from '../pipeline/visualize.js';

/** The repository root (CLIs run with the package as cwd under nx). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

/** The BCCD copy shipped with the repository, the default dataset. */
export const DEFAULT_DATA = path.join(REPO_ROOT, 'datasets', 'bccd');

/** Prints the dataset's clipped/dropped counts, then its warnings (e.g. dropped degenerate boxes), to stderr. */
export function reportWarnings(ds: DetectionDataset): void {
  if (ds.summary) process.stderr.write(`${formatDatasetSummary(ds.source, ds.summary)}\n`);
  if (ds.warnings.length === 0) return;
  process.stderr.write(`${ds.source}: ${ds.warnings.length} problem(s) handled:\n${ds.warnings.map((w) => `  - ${w}`).join('\n')}\n`);
}

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
