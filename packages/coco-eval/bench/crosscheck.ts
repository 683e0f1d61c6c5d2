/**
 * Live cross-check against pycocotools (needs the reference venv): for each seed, Python writes a
 * random synthetic case (crowd, all area ranges, empty images, >100 detections, polygons/RLE,
 * keypoints) and pycocotools' stats; this package evaluates the same files and the largest
 * difference is printed. Exit code 1 if any stat differs by more than 1e-12.
 *
 *   nx run coco-eval:crosscheck [-- --seeds 20 --first 1000]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { COCO, COCOeval, type IouType } from '../src/index.js';

function evaluate(gtFile: string, dtFile: string, iouType: IouType, useCats = true): number[] {
  const gt = new COCO(gtFile);
  const E = new COCOeval(gt, gt.loadRes(dtFile), iouType);
  E.params.useCats = useCats;
  E.evaluate();
  E.accumulate();
  return E.summarize({ log: null });
}

async function main(): Promise<void> {
  const a = await yargs(hideBin(process.argv))
    .option('seeds', { type: 'number', default: 10 })
    .option('first', { type: 'number', default: 1000 })
    .option('python', { type: 'string', default: resolve(import.meta.dirname, '../../../.venv-ref/bin/python') })
    .strict()
    .parseAsync();
  if (!existsSync(a.python)) throw new Error(`no python at ${a.python}: the cross-check needs the reference venv with pycocotools`);
  const tool = resolve(import.meta.dirname, '../tools/make_fixtures.py');
  let worst = 0;
  let evaluations = 0;
  for (let seed = a.first; seed < a.first + a.seeds; seed++) {
    const dir = join(tmpdir(), `coco-eval-crosscheck-${seed}`);
    const py = spawnSync(a.python, [tool, '--random-case', String(seed), dir], { encoding: 'utf8' });
    if (py.status !== 0) throw new Error(`seed ${seed}: python failed: ${py.stderr.trim().split('\n').pop()}`);
    const ref = JSON.parse(readFileSync(join(dir, 'stats.json'), 'utf8')) as Record<string, number[]>;
    const ours: Record<string, () => number[]> = {
      bbox: () => evaluate(join(dir, 'gt.json'), join(dir, 'dt_bbox.json'), 'bbox'),
      bbox_agnostic: () => evaluate(join(dir, 'gt.json'), join(dir, 'dt_bbox.json'), 'bbox', false),
      segm: () => evaluate(join(dir, 'gt.json'), join(dir, 'dt_segm.json'), 'segm'),
      keypoints: () => evaluate(join(dir, 'kgt.json'), join(dir, 'kdt.json'), 'keypoints'),
    };
    const diffs: string[] = [];
    for (const [name, refStats] of Object.entries(ref)) {
      const s = ours[name]!();
      const d = Math.max(...s.map((v, i) => Math.abs(v - refStats[i]!)));
      worst = Math.max(worst, d);
      evaluations++;
      diffs.push(`${name} ${d.toExponential(1)}`);
    }
    console.log(`seed ${seed}: ${diffs.join(', ')}`);
  }
  console.log(`${evaluations} evaluations over ${a.seeds} seeds; largest |stat difference| ${worst.toExponential(2)}`);
  if (worst > 1e-12) process.exitCode = 1;
}

await main();
