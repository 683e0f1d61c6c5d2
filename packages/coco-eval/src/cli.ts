/**
 * coco-eval CLI: pycocotools' evaluation of a results file against a ground-truth file.
 *
 *   coco-eval --gt instances_val2017.json --dt results.json --iou-type bbox|segm|keypoints [--json]
 *
 * Prints pycocotools' 12-line table (or, with --json, one JSON object whose `stats` are the 12
 * numbers, 10 for keypoints). Errors go to stderr with exit code 1. This tool does not use TensorFlow, so it does not
 * initialise a tfjs backend.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { COCO } from './coco.js';
import { COCOeval } from './cocoeval.js';
import { pyFixed } from './cocoeval.js';
import type { IouType } from './params.js';

/** Names of the 12 summary numbers (bbox/segm), in `stats` order. */
export const STAT_NAMES = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl'];
/** Names of the 10 keypoint summary numbers. */
export const KEYPOINT_STAT_NAMES = ['AP', 'AP50', 'AP75', 'APm', 'APl', 'AR', 'AR50', 'AR75', 'ARm', 'ARl'];

/** Parsed options of the CLI. */
export interface CliOptions {
  gt: string;
  dt: string;
  iouType: IouType;
  json: boolean;
  perCategory: boolean;
  allowEmpty: boolean;
  useCats: boolean;
}

/** Runs one evaluation and writes its report through `out`; returns the stats. */
export function runCli(o: CliOptions, out: (s: string) => void, log: (s: string) => void): number[] {
  let tic = performance.now();
  log('loading annotations into memory...');
  const gt = new COCO(o.gt);
  const dt = gt.loadRes(o.dt, { allowEmpty: o.allowEmpty });
  const loadS = (performance.now() - tic) / 1000;
  log(`Done (t=${loadS.toFixed(2)}s)`);
  const E = new COCOeval(gt, dt, o.iouType);
  E.params.useCats = o.useCats;
  log('Running per image evaluation...');
  log(`Evaluate annotation type *${o.iouType}*`);
  const evalS = E.evaluate();
  log(`DONE (t=${evalS.toFixed(2)}s).`);
  log('Accumulating evaluation results...');
  const accS = E.accumulate();
  log(`DONE (t=${accS.toFixed(2)}s).`);
  tic = performance.now();
  const lines: string[] = [];
  const stats = E.summarize({ log: (l) => lines.push(l) });
  if (o.json) {
    const result: Record<string, unknown> = {
      iouType: o.iouType,
      gt: o.gt,
      dt: o.dt,
      stats,
      statNames: o.iouType === 'keypoints' ? KEYPOINT_STAT_NAMES : STAT_NAMES,
      seconds: { load: loadS, evaluate: evalS, accumulate: accS },
    };
    if (o.perCategory) result.perCategory = E.perCategory();
    out(JSON.stringify(result));
    return stats;
  }
  for (const l of lines) out(l);
  if (o.perCategory) {
    out('');
    out(`${'category'.padEnd(20)} ${'id'.padStart(4)}     AP   AP50   AP75     AR`);
    for (const c of E.perCategory()) {
      const f = (v: number) => pyFixed(v * (v < 0 ? 1 : 100), 1).padStart(6);
      out(`${c.name.slice(0, 20).padEnd(20)} ${String(c.catId).padStart(4)} ${f(c.ap)} ${f(c.ap50)} ${f(c.ap75)} ${f(c.ar)}`);
    }
  }
  return stats;
}

/** Parses argv (without node and script) into options; throws with a usage message on bad input. */
export async function parseArgs(argv: string[]): Promise<CliOptions> {
  const a = await yargs(argv)
    .scriptName('coco-eval')
    .usage('$0 --gt GT.json --dt RESULTS.json --iou-type bbox|segm|keypoints [--json]')
    .option('gt', { type: 'string', demandOption: true, describe: 'ground-truth instances JSON' })
    .option('dt', { type: 'string', demandOption: true, describe: 'results JSON (list of detections)' })
    .option('iou-type', { choices: ['bbox', 'segm', 'keypoints'] as const, demandOption: true, describe: 'compare boxes, masks or keypoints (OKS)' })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON object (stats = the 12 numbers)' })
    .option('per-category', { type: 'boolean', default: false, describe: 'add per-category AP/AR' })
    .option('allow-empty', { type: 'boolean', default: false, describe: 'evaluate an empty result list as no detections' })
    .option('use-cats', { type: 'boolean', default: true, describe: 'per-category evaluation (--no-use-cats: class-agnostic)' })
    .strict()
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .help()
    .parseAsync();
  return {
    gt: a.gt,
    dt: a.dt,
    iouType: a['iou-type'] as IouType,
    json: a.json,
    perCategory: a['per-category'],
    allowEmpty: a['allow-empty'],
    useCats: a['use-cats'],
  };
}

async function main(): Promise<void> {
  const argv = hideBin(process.argv);
  if (argv.includes('--help') || argv.includes('-h')) {
    await yargs(argv).scriptName('coco-eval').usage('$0 --gt GT.json --dt RESULTS.json --iou-type bbox|segm|keypoints [--json] [--per-category] [--allow-empty] [--no-use-cats]').parseAsync();
    return;
  }
  try {
    const o = await parseArgs(argv);
    const quiet = o.json ? () => {} : (s: string) => process.stderr.write(`${s}\n`);
    runCli(o, (s) => process.stdout.write(`${s}\n`), quiet);
  } catch (e) {
    process.stderr.write(`coco-eval: error: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) await main();
