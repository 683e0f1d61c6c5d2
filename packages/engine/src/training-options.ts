/**
 * The training options every pipeline CLI shares (classify, detect, segment), defined once: the
 * same names, meanings and checks everywhere, listed under one `--help` heading. Each CLI passes
 * its own defaults. Invalid values (`--lr -1`, `--epochs 0`, ...) are refused at parse time,
 * before any data is read or model built (exit code 2).
 *
 * Old per-pipeline spellings stay as deprecated aliases for one version: {@link applyDeprecatedAliases}
 * rewrites them before parsing and prints a warning naming the new flag.
 */
import type { Argv } from 'yargs';

/** Heading of the shared group in `--help`. */
export const TRAINING_OPTIONS_HEADING = 'Training options (shared by classify, detect and segment):';

/** Per-CLI defaults of the shared options. */
export interface TrainingDefaults {
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  /** Linear warmup in epochs (applied per iteration); undefined: the pipeline's own default. */
  warmupEpochs?: number;
  /** Linear warmup in iterations; when given it replaces `--warmup-epochs`. */
  warmupSteps?: number;
  /** Warmup start as a fraction of `--lr`. */
  warmupStartFactor: number;
  seed: number;
  /** Default `--out` (undefined: the CLI derives it from the run name). */
  out?: string;
  trainLimit?: number;
  valLimit?: number;
  /** RefConv defaults. */
  mapK: 1 | 3 | 5;
  grouping: 'official' | 'per-kernel' | 'full';
  refconvInit: 'default' | 'zero';
  frozen: 'official' | 'transform-only';
}

/** The shared option names (kebab-case), in `--help` order. */
export const TRAINING_OPTION_NAMES = [
  'epochs', 'batch-size', 'lr', 'momentum', 'weight-decay', 'warmup-epochs', 'warmup-steps', 'warmup-start-factor', 'seed',
  'out', 'resume', 'accept-changed-options', 'train-limit', 'val-limit',
  'refconv', 'map-k', 'grouping', 'refconv-init', 'frozen', 'from',
] as const;

/** Refusals of invalid shared values, each naming the option and the value; empty when all are valid. */
export function trainingOptionProblems(a: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const num = (k: string) => a[k] as number | undefined;
  const positiveInt = (k: string, optional = false) => {
    const v = num(k);
    if (optional && (v === undefined || v === 0)) return;
    if (!(Number.isInteger(v) && v! > 0)) problems.push(`--${k} must be a positive integer, got ${v}`);
  };
  const nonNegative = (k: string) => {
    const v = num(k);
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) problems.push(`--${k} must be a finite number >= 0, got ${v}`);
  };
  positiveInt('epochs');
  positiveInt('batch-size');
  const lr = num('lr');
  if (!(Number.isFinite(lr) && lr! > 0)) problems.push(`--lr must be a finite number > 0, got ${lr}`);
  const m = num('momentum');
  if (!(Number.isFinite(m) && m! >= 0 && m! < 1)) problems.push(`--momentum must be in [0, 1), got ${m}`);
  nonNegative('weight-decay');
  nonNegative('warmup-epochs');
  const ws = num('warmup-steps');
  if (ws !== undefined && !(Number.isInteger(ws) && ws >= 0)) problems.push(`--warmup-steps must be an integer >= 0, got ${ws}`);
  const f = num('warmup-start-factor');
  if (!(Number.isFinite(f) && f! > 0 && f! <= 1)) problems.push(`--warmup-start-factor must be in (0, 1], got ${f}`);
  const seed = num('seed');
  if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0)) problems.push(`--seed must be an integer >= 0, got ${seed}`);
  positiveInt('train-limit', true);
  positiveInt('val-limit', true);
  return problems;
}

/**
 * Adds the shared training options to a yargs parser, grouped under
 * {@link TRAINING_OPTIONS_HEADING}, with a check that refuses invalid values (usage error,
 * exit code 2, before anything is built).
 */
export function trainingOptions<T>(y: Argv<T>, d: TrainingDefaults) {
  return y
    .option('epochs', { type: 'number', default: d.epochs, describe: 'training epochs' })
    .option('batch-size', { type: 'number', default: d.batchSize, describe: 'images per optimizer step' })
    .option('lr', { type: 'number', default: d.lr, describe: 'peak learning rate (> 0)' })
    .option('momentum', { type: 'number', default: d.momentum, describe: 'SGD momentum, in [0, 1)' })
    .option('weight-decay', { type: 'number', default: d.weightDecay, describe: 'L2 weight decay' })
    .option('warmup-epochs', { type: 'number', default: d.warmupEpochs, describe: 'linear LR warmup in epochs (applied per iteration)' })
    .option('warmup-steps', { type: 'number', default: d.warmupSteps, describe: 'linear LR warmup in iterations (replaces --warmup-epochs when given)' })
    .option('warmup-start-factor', { type: 'number', default: d.warmupStartFactor, describe: 'LR at the start of warmup, as a fraction of --lr' })
    .option('seed', { type: 'number', default: d.seed, describe: 'seed of initialisation, data order and augmentation' })
    .option('out', { type: 'string', default: d.out, describe: 'output folder' })
    .option('resume', { type: 'boolean', default: false, describe: 'continue the run in --out from its last checkpoint (refused if an option that changes the result differs)' })
    .option('accept-changed-options', { type: 'boolean', default: false, describe: 'with --resume: continue even though options differ from the stored run (recorded in the log)' })
    .option('train-limit', { type: 'number', default: d.trainLimit, describe: 'use only N training images (0 = all)' })
    .option('val-limit', { type: 'number', default: d.valLimit, describe: 'use only N validation images (0 = all)' })
    .option('refconv', { type: 'boolean', default: false, describe: 'refocus the --from model with RefConv, train the transforms, fuse' })
    .option('map-k', { choices: [1, 3, 5] as const, default: d.mapK as 1 | 3 | 5, describe: 'RefConv refocusing map size' })
    .option('grouping', { choices: ['official', 'per-kernel', 'full'] as const, default: d.grouping as 'official' | 'per-kernel' | 'full', describe: 'RefConv transform grouping' })
    .option('refconv-init', { choices: ['default', 'zero'] as const, default: d.refconvInit as 'default' | 'zero', describe: "RefConv transform init: 'default' (Kaiming-uniform, official) or 'zero' (starts at the trained model)" })
    .option('frozen', { choices: ['official', 'transform-only'] as const, default: d.frozen as 'official' | 'transform-only', describe: 'what RefConv freezes: the bases (official) or everything but the transforms' })
    .option('from', { type: 'string', describe: 'trained checkpoint to start from (fine-tuning, or the model --refconv refocuses)' })
    .group([...TRAINING_OPTION_NAMES], TRAINING_OPTIONS_HEADING)
    .check((a) => {
      const problems = trainingOptionProblems(a as Record<string, unknown>);
      if (a['accept-changed-options'] && !a.resume) problems.push('--accept-changed-options only applies with --resume');
      return problems.length ? problems.join('; ') : true;
    });
}

/**
 * Rewrites deprecated spellings in `argv` to the shared names (`--old V`, `--old=V`,
 * `--no-old`), printing `<script>: --old is deprecated; use --new` once per old flag. `aliases`
 * maps old name -> new name (kebab-case, without dashes).
 */
export function applyDeprecatedAliases(argv: string[], aliases: Record<string, string>, scriptName: string, warn: (line: string) => void = (l) => void process.stderr.write(l + '\n')): string[] {
  const warned = new Set<string>();
  return argv.map((arg) => {
    const m = /^--(no-)?([^=]+)(=.*)?$/.exec(arg);
    if (!m) return arg;
    const [, no = '', name, rest = ''] = m;
    const target = aliases[name!];
    if (target === undefined) return arg;
    if (!warned.has(name!)) {
      warned.add(name!);
      warn(`${scriptName}: --${name} is deprecated; use --${target}`);
    }
    return `--${no}${target}${rest}`;
  });
}

/** How many warmup steps the shared options ask for, given the steps of one epoch. */
export function warmupStepsOf(a: { warmupSteps?: number; warmupEpochs?: number }, stepsPerEpoch: number): number {
  return a.warmupSteps !== undefined ? a.warmupSteps : Math.round((a.warmupEpochs ?? 0) * stepsPerEpoch);
}
