/**
 * Progress reporting for long loops: a cli-progress bar on a terminal, plain log lines
 * (at most one every few seconds, plus a final one) when output is a file or a pipe, so
 * CI logs stay readable.
 */
import cliProgress from 'cli-progress';

/** Values shown beside the bar: numbers are formatted compactly, strings shown as is. */
export type ProgressValues = Record<string, number | string | undefined>;

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Shown first on the line, e.g. `epoch 3/10`. */
  label: string;
  /** Number of steps (batches) in the loop. */
  total: number;
  /** Stream to write to (default `process.stderr`). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Force bar (true) or plain lines (false); default: bar iff the stream is a TTY. */
  tty?: boolean;
  /** Minimum seconds between plain log lines (default 10). */
  logIntervalSec?: number;
  /** Name of the counted items for the rate (default `img`). */
  unit?: string;
  /** Clock in ms, injectable for tests (default `performance.now`). */
  now?: () => number;
}

/** A running progress display. */
export interface ProgressReporter {
  /**
   * Records `steps` more completed steps and `items` more processed items (for the rate),
   * and updates the shown values (e.g. `{loss, acc, lr}`).
   */
  tick(steps: number, items: number, values?: ProgressValues): void;
  /** Ends the display and prints a final line. Returns the elapsed seconds. */
  finish(values?: ProgressValues): number;
}

/** Formats a number the way training logs usually do (4 significant digits, lr in e-notation). */
export function formatValue(key: string, v: number | string | undefined): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  if (key === 'lr' || (Math.abs(v) > 0 && Math.abs(v) < 1e-3)) return v.toExponential(2);
  if (Number.isInteger(v)) return String(v);
  return v.toPrecision(4);
}

/** Seconds as `1h02m`, `3m05s` or `12s`. */
export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return '?';
  const s = Math.round(sec);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

function formatValues(values: ProgressValues): string {
  return Object.entries(values)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${formatValue(k, v)}`)
    .join(' ');
}

/** Starts a progress display (see module doc). */
export function createProgress(opts: ProgressOptions): ProgressReporter {
  const stream = opts.stream ?? process.stderr;
  const tty = opts.tty ?? Boolean(stream.isTTY);
  const now = opts.now ?? (() => performance.now());
  const unit = opts.unit ?? 'img';
  const logInterval = (opts.logIntervalSec ?? 10) * 1000;
  const start = now();
  let steps = 0;
  let items = 0;
  let lastLog = start;
  let values: ProgressValues = {};

  const status = (): string => {
    const elapsed = (now() - start) / 1000;
    const rate = elapsed > 0 ? items / elapsed : 0;
    const eta = steps > 0 ? (elapsed / steps) * (opts.total - steps) : NaN;
    const vals = formatValues(values);
    return `${vals}${vals ? ' ' : ''}${rate.toFixed(1)} ${unit}/s ETA ${formatDuration(eta)}`;
  };

  const bar = tty
    ? new cliProgress.SingleBar(
        { format: `${opts.label} [{bar}] {value}/{total} {status}`, stream, fps: 5, hideCursor: true, barsize: 24, clearOnComplete: false },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  bar?.start(opts.total, 0, { status: '' });

  const plainLine = (): string => {
    const pct = opts.total > 0 ? ((100 * steps) / opts.total).toFixed(0) : '100';
    return `${opts.label} ${steps}/${opts.total} (${pct}%) ${status()}\n`;
  };

  return {
    tick(n, m, v) {
      steps += n;
      items += m;
      if (v) values = { ...values, ...v };
      if (bar) {
        bar.update(steps, { status: status() });
      } else if (now() - lastLog >= logInterval) {
        lastLog = now();
        stream.write(plainLine());
      }
    },
    finish(v) {
      if (v) values = { ...values, ...v };
      const elapsed = (now() - start) / 1000;
      if (bar) {
        bar.update(steps, { status: status() });
        bar.stop();
      }
      const rate = elapsed > 0 ? items / elapsed : 0;
      stream.write(`${opts.label} done ${steps}/${opts.total} in ${formatDuration(elapsed)} ${formatValues(values)} ${rate.toFixed(1)} ${unit}/s\n`);
      return elapsed;
    },
  };
}
