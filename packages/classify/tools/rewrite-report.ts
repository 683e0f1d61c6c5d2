/**
 * Re-renders `<out>/report.md` and the PNG curves from `<out>/results.json` (e.g. after a
 * report-format change), without rerunning anything.
 * Usage: node --conditions=@refconv/source --import tsx tools/rewrite-report.ts <out> [numClasses] [data description]
 */
import { readJsonFile } from '@refconv/engine';
import * as path from 'node:path';
import type { RunConfig } from '../src/config.js';
import type { SeedResult } from '../src/protocol.js';
import { writeReport } from '../src/report.js';

const [out, numClasses, descriptionArg] = process.argv.slice(2);
if (!out) throw new Error('usage: rewrite-report.ts <out> [numClasses]');
const saved = readJsonFile<{ command: string; config: RunConfig; results: SeedResult[]; dataDescription?: string; numClasses?: number }>(path.join(out, 'results.json'));
const description = descriptionArg ?? saved.dataDescription ?? '(see results.json)';
console.log(await writeReport({ ...saved.config, out }, saved.results, saved.command, description, numClasses ? Number(numClasses) : saved.numClasses));
