/** Command-line helpers shared by the pipelines' CLIs (yargs, strict options, config files). */
import * as fs from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { readJsonFile } from './fs-atomic.js';

/**
 * Reads a JSON config file for yargs' `.config()`: keys are option names (camelCase or
 * kebab-case). Errors name the file.
 */
export function readConfigFile(file: string): Record<string, unknown> {
  if (!fs.existsSync(file)) throw new Error(`config file ${file} does not exist`);
  const cfg = readJsonFile(file);
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) throw new Error(`config file ${file} must hold a JSON object`);
  return cfg as Record<string, unknown>;
}

/**
 * A yargs parser with the conventions every pipeline CLI follows: unknown options are an
 * error (`strict`), `--config file.json` supplies defaults that flags override, `--help`
 * lists everything, and parse errors print the message plus usage and exit with code 2.
 */
export function createCli(argv: string[], scriptName: string): Argv {
  return yargs(argv)
    .scriptName(scriptName)
    .strict()
    .config('config', 'JSON file with option values (flags override it)', readConfigFile)
    .help()
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .fail((msg, err: unknown, y) => {
      if (err instanceof Error) throw err; // a program error, not a usage error
      // usage errors: unknown options, failed .check() (whose message may arrive as `err`)
      process.stderr.write(`${scriptName}: ${msg ?? String(err)}\n\n`);
      y.showHelp();
      process.exit(2);
    });
}
