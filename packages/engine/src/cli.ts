/** Command-line helpers shared by the pipelines' CLIs (yargs, strict options, config files, paths). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import yargs, { type Argv } from 'yargs';
import { readJsonFile } from './fs-atomic.js';
import { REPO_ROOT } from './shared-datasets.js';

/**
 * The folder the user ran the command from. `nx run` starts a target with the package folder as
 * cwd, so relative paths on the command line would otherwise resolve against `packages/<pkg>`:
 * `REFCONV_USER_CWD` when set, else npm's `INIT_CWD` (set by `npx` / `npm run` to the folder they
 * were invoked from), else the process cwd.
 */
export function userCwd(): string {
  return process.env.REFCONV_USER_CWD || process.env.INIT_CWD || process.cwd();
}

/** A path given on the command line, resolved against {@link userCwd}. */
export function resolveUserPath(p: string): string {
  return path.resolve(userCwd(), p);
}

/** Default output folder of a pipeline run: `<repo>/runs/<task>/<name>`. */
export function defaultRunDir(task: string, name: string): string {
  return path.join(REPO_ROOT, 'runs', task, name);
}

/**
 * A yargs middleware (`.middleware(resolvePaths([...]))`) that resolves the listed path options
 * against {@link userCwd} after parsing (arrays element by element); values for which `keep`
 * returns true (keywords such as `fashion-mnist`) stay as given.
 */
export function resolvePaths(names: string[], keep: (value: string) => boolean = () => false): (argv: Record<string, unknown>) => void {
  return (a) => {
    for (const name of names) {
      const camel = name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
      const v = a[name];
      if (v === undefined || v === null) continue;
      const one = (x: unknown) => (typeof x === 'string' && !keep(x) ? resolveUserPath(x) : x);
      const resolved = Array.isArray(v) ? v.map(one) : one(v);
      a[name] = resolved;
      if (camel !== name) a[camel] = resolved;
    }
  };
}

/**
 * Reads a JSON config file for yargs' `.config()`: keys are option names (camelCase or
 * kebab-case). Errors name the file.
 */
export function readConfigFile(given: string): Record<string, unknown> {
  const file = path.isAbsolute(given) ? given : resolveUserPath(given);
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
