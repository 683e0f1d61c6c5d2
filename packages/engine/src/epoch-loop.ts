/**
 * The one epoch loop of the classify, detect and segment pipelines (as torchvision's references'
 * `train_one_epoch`, but also owning what every task's loop must do the same way). Not a
 * framework: the task supplies its batches, a step closure `(batch, lr) -> {loss, n, metrics}`,
 * an optional evaluation callback and its checkpoint policy; the loop owns
 *
 * - resume: weights, optimizer state, epoch, step and the data-order RNG from `last.safetensors`
 *   (or, with the `final` policy, reuse of a finished `final.safetensors`), bit-identical to an
 *   uninterrupted run: epoch `e` draws its order from `Rng(deriveSeed(...seedPath, e))` and the
 *   checkpoint stores the next epoch's generator state;
 * - the run's resolved options (`runOptions`) stored in every checkpoint; on resume a changed
 *   option is refused, listing each `name: old -> new`, unless `acceptChangedOptions` (then the
 *   change is logged and recorded in the checkpoint);
 * - `metrics.jsonl`: one `type: 'epoch'` record per epoch (plus `type: 'step'` records every
 *   `logEvery` steps), truncated on resume to what the checkpoint covers;
 * - progress display and data-wait timing;
 * - the SGD optimizer, disposed in `finally`;
 * - after every epoch and before every checkpoint write: every weight (BN moving statistics
 *   included) and the validation loss must be finite, else {@link NonFiniteError} naming the
 *   tensor and the epoch is thrown and no checkpoint is written (the last good one stays);
 * - one {@link EpochRecord} shape.
 *
 * Files in `dir`: `last.safetensors` (weights + optimizer + state, every epoch),
 * `best.safetensors` (weights + state, when `best` is set and the metric improved),
 * `final.safetensors` (weights + state, when `final` is set, after the last epoch), `metrics.jsonl`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SafeTensor, SafeTensorInput } from '@refconv/core';
import { loadCheckpoint, saveCheckpoint, type Checkpoint, type TrainingState } from './checkpoint.js';
import { JsonlLogger, readJsonl } from './metrics-log.js';
import { timeWaits, type WaitMeter } from './prefetch.js';
import { createProgress } from './progress.js';
import { deriveSeed, Rng } from './rng.js';
import type { LrSchedule } from './schedule.js';
import { SGD, type NamedParam, type SgdOptions } from './sgd.js';

/** What one optimizer step reports. */
export interface StepResult {
  /** The batch's mean loss (as the optimizer saw it). */
  loss: number;
  /** Number of samples in the batch (epoch means are weighted by it). */
  n: number;
  /** Other batch means to average over the epoch (e.g. `top1`, loss terms). */
  metrics?: Record<string, number>;
}

/** What the evaluation callback returns. */
export interface EvalResult {
  /** Validation loss; checked to be finite when given. */
  loss?: number;
  /** Metrics to record (e.g. `top1`, `mIoU`). */
  metrics: Record<string, number>;
  /** Extra JSON for the epoch's log record (e.g. per-class IoU). */
  details?: Record<string, unknown>;
}

/** One epoch, the same shape in every pipeline. */
export interface EpochRecord {
  /** 1-based epoch number. */
  epoch: number;
  /** Optimizer steps done after this epoch. */
  step: number;
  /** Learning rate of the epoch's last step. */
  lr: number;
  /** Mean training loss over the epoch's samples (weighted by batch size). */
  trainLoss: number;
  /** Sample-weighted means of the step metrics. */
  train: Record<string, number>;
  /** Evaluation result of this epoch (absent when it was not evaluated): loss + metrics. */
  val?: Record<string, number>;
  /** Wall seconds of the epoch (training + evaluation). */
  seconds: number;
  /** Wall seconds of the training part. */
  trainSeconds: number;
  /** Training samples per second. */
  itemsPerSec: number;
  /** Seconds the training loop waited for the next batch (data loading prefetching did not hide). */
  dataWaitSeconds: number;
}

/** A weight or metric that is NaN or infinite at the end of an epoch. */
export class NonFiniteError extends Error {
  constructor(
    readonly epoch: number,
    readonly tensor: string,
    readonly count: number,
    message: string,
  ) {
    super(message);
    this.name = 'NonFiniteError';
  }
}

/** One changed run option found on resume. */
export interface OptionChange {
  option: string;
  old: unknown;
  new: unknown;
}

/** Options of {@link runEpochs}. `B` is the task's batch type. */
export interface EpochLoopOptions<B> {
  /** Label of progress lines and log records (e.g. `pretrain`, `bccd-retinanet`). */
  name: string;
  /** Run folder (created). */
  dir: string;
  /** Trainable parameters the optimizer updates. */
  params: NamedParam[];
  /** SGD options (momentum, Nesterov, weight decay, decay filter). */
  sgd: SgdOptions;
  /** Learning rate per optimizer step. */
  schedule: LrSchedule;
  epochs: number;
  /** Steps of one epoch (progress total). */
  stepsPerEpoch: number;
  /** Epoch `e`'s RNG is `Rng(deriveSeed(...seedPath, e))` (e.g. `[seed]` or `[seed, stageSalt]`). */
  seedPath: number[];
  /** The epoch's batches; draw the data order (and any per-epoch randomness) from `rng`. */
  batches: (epoch: number, rng: Rng) => AsyncIterable<B>;
  /** One optimizer step on `batch` at learning rate `lr` (e.g. with {@link sgdStep} and `optimizer`). */
  step: (batch: B, lr: number, optimizer: SGD) => StepResult;
  /** Evaluates the model after an epoch (1-based `epoch`); see `evalEvery`. */
  evaluate?: (epoch: number) => Promise<EvalResult>;
  /** Evaluate every N epochs and always after the last (default 1; 0 = only after the last). */
  evalEvery?: number;
  /** All model weights (BN statistics included) by name: saved and checked to be finite. */
  weights: () => Record<string, SafeTensorInput>;
  /** Loads weights read from a checkpoint (strict); `source` names the file for errors. */
  loadWeights: (weights: Map<string, SafeTensor>, source: string) => void;
  /** Keep `best.safetensors` by this validation metric. */
  best?: { metric: string; mode: 'max' | 'min' };
  /** Write `final.safetensors` after the last epoch; on resume, a finished stage is reused. */
  final?: boolean;
  /** The run's resolved options that change the result; stored and compared on resume. */
  runOptions: Record<string, unknown>;
  /** Continue from `dir/last.safetensors` (or reuse `dir/final.safetensors`). */
  resume: boolean;
  /** Resume even though options differ (the changes are logged and recorded). */
  acceptChangedOptions?: boolean;
  /** Static checkpoint contents: class names, model description, task extras. */
  state?: Pick<TrainingState, 'classNames' | 'model'> & { extra?: Record<string, unknown> };
  /** Write a `type: 'step'` record every this many steps (default 0: none). */
  logEvery?: number;
  /** Progress stream (default stderr). */
  progressStream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Progress-line name of a metric (default: as is). */
  shortName?: (metric: string) => string;
  /** Prints a line (default: to stderr). */
  log?: (line: string) => void;
  /** Called after each epoch's checkpoints are written (e.g. to draw curves). */
  afterEpoch?: (record: EpochRecord) => Promise<void> | void;
  /**
   * Stop on SIGTERM / SIGUSR1 (Slurm's preemption and `--signal` warning) after the current step,
   * throwing {@link PreemptedError} (default true); see {@link PREEMPT_SIGNALS}.
   */
  stopOnSignals?: boolean;
  /**
   * On such a signal, write `last.safetensors` at the current step (weights, optimizer, the
   * epoch's RNG and how far it got; resume skips the epoch's trained batches) instead of keeping
   * the end-of-epoch checkpoint (default false). Only for tasks whose batches depend on nothing
   * but `(epoch, rng)` and whose step on nothing but the optimizer state (classify; checked
   * bit-identical there).
   */
  midEpochCheckpoint?: boolean;
}

/** Signals that stop a training loop cleanly (Slurm: preemption / `scancel` sends SIGTERM, `--signal=B:USR1@T` the warning). */
export const PREEMPT_SIGNALS = ['SIGTERM', 'SIGUSR1'] as const;

/** Set by a preemption signal received during any {@link runEpochs} of this process. */
let preemptSignal: string | undefined;

/**
 * Forgets a preemption signal received earlier in this process (after it, every later
 * {@link runEpochs} stops at once, so a stage that ended during the signal does not start the next
 * one). For tests and embedders that handle {@link PreemptedError} and want to train on.
 */
export function resetPreemption(): void {
  preemptSignal = undefined;
}

/**
 * Thrown by {@link runEpochs} when a SIGTERM / SIGUSR1 arrived: the current step finished, the
 * partial epoch was dropped and `checkpoint` (written atomically at the end of `epoch`) is what
 * `--resume` continues from, bit-identical to an uninterrupted run. CLIs exit with
 * `PREEMPTED_EXIT_CODE` (75, see slurm.ts) so that a Slurm script requeues the task.
 */
export class PreemptedError extends Error {
  constructor(
    readonly signal: string,
    readonly stage: string,
    readonly epoch: number,
    readonly checkpoint: string | undefined,
    /** Batches of epoch `epoch + 1` the checkpoint covers (a mid-epoch checkpoint), else 0. */
    readonly batchesDone = 0,
  ) {
    super(
      `[${stage}] stopped by ${signal} during epoch ${epoch + 1}; ` +
        (batchesDone ? `checkpoint written at batch ${batchesDone} of epoch ${epoch + 1}: resume continues from ${checkpoint}` : checkpoint ? `resume continues from ${checkpoint} (epoch ${epoch})` : 'no checkpoint yet: resume starts the stage again'),
    );
    this.name = 'PreemptedError';
  }
}

/** What {@link runEpochs} returns. */
export interface EpochLoopResult {
  /** Every epoch of the stage (including those before a resume). */
  history: EpochRecord[];
  /** State stored with the last epoch (metrics, best, ...). */
  state: TrainingState;
  /** `final.safetensors` when written or reused, else `last.safetensors`. */
  checkpoint: string;
  /** True when a finished stage was only loaded (`final` policy + resume). */
  reused: boolean;
  /** The epoch resumed from (0 = a fresh start). */
  resumedFrom: number;
  /** Option changes accepted on resume. */
  changedOptions: OptionChange[];
}

/** Stored under `state.extra.loop` by the epoch loop. */
interface LoopState {
  runOptions: Record<string, unknown>;
  history: EpochRecord[];
  best?: { metric: string; value: number; epoch: number };
  /** Latest evaluated metrics (carried over epochs without evaluation). */
  lastVal?: Record<string, number>;
  changedOptions?: OptionChange[];
  /** A checkpoint written inside an epoch (on a preemption signal): how far that epoch got. */
  partial?: PartialEpoch;
}

/** The part of an epoch done before a mid-epoch checkpoint; resume skips its batches. */
interface PartialEpoch {
  /** Batches consumed (trained on) in the epoch. */
  batches: number;
  lossSum: number;
  seen: number;
  sums: Record<string, number>;
  lr: number;
  trainSeconds: number;
  dataWaitSeconds: number;
}

const stable = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1))) : x));

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * The options whose values differ between a stored and a new run, nested objects compared per
 * field (`optim.lr`), in key order.
 */
export function changedOptions(stored: Record<string, unknown>, current: Record<string, unknown>, prefix = ''): OptionChange[] {
  const keys = [...new Set([...Object.keys(stored), ...Object.keys(current)])].sort();
  return keys.flatMap((k) => {
    const a = stored[k];
    const b = current[k];
    if (isPlainObject(a) && isPlainObject(b)) return changedOptions(a, b, `${prefix}${k}.`);
    return stable(a) === stable(b) ? [] : [{ option: prefix + k, old: a, new: b }];
  });
}

const show = (v: unknown): string => (v === undefined ? '(unset)' : JSON.stringify(v));

/** `lr 0.1 -> 30, epochs 2 -> 3`. */
export function describeChanges(changes: OptionChange[]): string {
  return changes.map((c) => `${c.option} ${show(c.old)} -> ${show(c.new)}`).join(', ');
}

function checkOptions(file: string, ck: Checkpoint, o: EpochLoopOptions<unknown>, log: (s: string) => void): OptionChange[] {
  const stored = (ck.state.extra?.loop as LoopState | undefined)?.runOptions;
  if (!stored) throw new Error(`--resume: ${file} holds no stored run options (written by an older version); start a new run in another --out folder`);
  const changes = changedOptions(stored, o.runOptions);
  if (changes.length === 0) return [];
  if (!o.acceptChangedOptions) {
    throw new Error(
      `--resume: ${file} was written with different options: ${describeChanges(changes)}. ` +
        `Rerun with the stored values, start a new run in another --out folder, or pass --accept-changed-options to continue under the new ones`,
    );
  }
  log(`[${o.name}] --accept-changed-options: continuing ${file} with changed options: ${describeChanges(changes)}`);
  return changes;
}

/** The first non-finite value among `weights` (BN statistics included), or undefined. */
export function findNonFinite(weights: Record<string, SafeTensorInput>): { name: string; count: number; example: number } | undefined {
  for (const [name, t] of Object.entries(weights)) {
    const d = t.data;
    if (!(d instanceof Float32Array || d instanceof Float64Array)) continue;
    let count = 0;
    let example = 0;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i]!)) {
        if (count === 0) example = d[i]!;
        count++;
      }
    }
    if (count > 0) return { name, count, example };
  }
  return undefined;
}

/**
 * Throws {@link NonFiniteError} naming the first non-finite tensor of `weights`, for checkpoint
 * writes outside the loop (e.g. a fused model); `what` says which file or model.
 */
export function assertFiniteWeights(weights: Record<string, SafeTensorInput>, what: string, epoch = 0): void {
  const bad = findNonFinite(weights);
  if (bad) throw new NonFiniteError(epoch, bad.name, bad.count, `${what}: weight '${bad.name}' holds ${bad.count} non-finite value(s) (e.g. ${bad.example}); not written`);
}

/** Throws {@link NonFiniteError} unless every weight and the val loss are finite. */
function assertFinite(o: EpochLoopOptions<unknown>, epoch: number, weights: Record<string, SafeTensorInput>, valLoss: number | undefined, lastFile: string, haveGood: boolean): void {
  const keep = haveGood ? `; ${lastFile} (the last good checkpoint, epoch ${epoch - 1}) was left untouched` : '; no checkpoint of this run was written';
  const bad = findNonFinite(weights);
  if (bad) {
    throw new NonFiniteError(epoch, bad.name, bad.count, `[${o.name}] epoch ${epoch}: weight '${bad.name}' holds ${bad.count} non-finite value(s) (e.g. ${bad.example}): training diverged (lower --lr?)${keep}`);
  }
  if (valLoss !== undefined && !Number.isFinite(valLoss)) {
    throw new NonFiniteError(epoch, 'val loss', 1, `[${o.name}] epoch ${epoch}: validation loss is ${valLoss}: training diverged (lower --lr?)${keep}`);
  }
}

/** Rewrites `metrics.jsonl` keeping only records of epochs the resumed checkpoint covers. */
function truncateLog(file: string, epoch: number): void {
  if (!fs.existsSync(file)) return;
  const keep = readJsonl<{ epoch?: number }>(file).filter((r) => r.epoch === undefined || r.epoch <= epoch);
  fs.writeFileSync(file, keep.map((r) => JSON.stringify(r) + '\n').join(''));
}

/** Runs (or resumes) the epochs of one training stage; see the module doc. */
export async function runEpochs<B>(o: EpochLoopOptions<B>): Promise<EpochLoopResult> {
  if (!(Number.isInteger(o.epochs) && o.epochs >= 1)) throw new Error(`[${o.name}] epochs must be a positive integer, got ${o.epochs}`);
  if (!(o.stepsPerEpoch >= 1)) throw new Error(`[${o.name}] no training steps per epoch (${o.stepsPerEpoch}): is the training set empty?`);
  const log = o.log ?? ((s: string) => void process.stderr.write(s + '\n'));
  fs.mkdirSync(o.dir, { recursive: true });
  const lastFile = path.join(o.dir, 'last.safetensors');
  const finalFile = path.join(o.dir, 'final.safetensors');
  const bestFile = path.join(o.dir, 'best.safetensors');
  const logFile = path.join(o.dir, 'metrics.jsonl');

  if (o.resume && o.final && fs.existsSync(finalFile)) {
    const ck = loadCheckpoint(finalFile);
    const changes = checkOptions(finalFile, ck, o as EpochLoopOptions<unknown>, log);
    o.loadWeights(ck.weights, finalFile);
    log(`[${o.name}] already complete: reusing ${finalFile}`);
    const loop = ck.state.extra?.loop as LoopState;
    return { history: loop.history, state: ck.state, checkpoint: finalFile, reused: true, resumedFrom: ck.state.epoch, changedOptions: changes };
  }

  const onSignal = (sig: NodeJS.Signals) => {
    if (!preemptSignal) log(`[${o.name}] ${sig}: stopping after the current step`);
    preemptSignal = sig;
  };
  const stopOnSignals = o.stopOnSignals ?? true;
  if (stopOnSignals) for (const s of PREEMPT_SIGNALS) process.on(s, onSignal);
  const opt = new SGD(o.params, o.sgd);
  try {
    let epoch = 0;
    let step = 0;
    let loop: LoopState = { runOptions: o.runOptions, history: [] };
    let rngState = new Rng(deriveSeed(...(o.seedPath as [number, ...number[]]), 0)).getState();
    let changes: OptionChange[] = [];
    const resumed = o.resume && fs.existsSync(lastFile) ? loadCheckpoint(lastFile) : undefined;
    let newChanges: OptionChange[] = [];
    if (resumed) {
      newChanges = checkOptions(lastFile, resumed, o as EpochLoopOptions<unknown>, log);
      changes = newChanges;
      truncateLog(logFile, resumed.state.epoch);
    }
    const logger = new JsonlLogger(logFile, { truncate: !resumed });
    if (resumed) {
      o.loadWeights(resumed.weights, lastFile);
      if (resumed.optimizer) opt.setState(resumed.optimizer);
      epoch = resumed.state.epoch;
      step = resumed.state.step;
      if (!resumed.state.rng) throw new Error(`--resume: ${lastFile} holds no RNG state`);
      rngState = resumed.state.rng;
      const stored = resumed.state.extra!.loop as LoopState;
      changes = [...(stored.changedOptions ?? []), ...changes];
      loop = { ...stored, runOptions: o.runOptions, changedOptions: changes.length ? changes : undefined };
      log(`[${o.name}] resuming from ${lastFile}: epoch ${epoch}/${o.epochs}${loop.partial ? ` + ${loop.partial.batches} batch(es)` : ''}, step ${step}`);
      // no `epoch` field: readers that plot per-epoch records filter by `type: 'epoch'` or by `epoch`
      logger.log({ type: 'resume', stage: o.name, fromEpoch: epoch, step });
      if (newChanges.length) logger.log({ type: 'changed-options', stage: o.name, changes: newChanges });
    }
    const stateAt = (e: number, s: number, next: Rng, extraLoop: LoopState): TrainingState => ({
      epoch: e,
      step: s,
      rng: next.getState(),
      classNames: o.state?.classNames,
      model: o.state?.model,
      metrics: extraLoop.lastVal,
      extra: { ...o.state?.extra, loop: extraLoop },
    });
    let state: TrainingState = resumed?.state ?? stateAt(0, 0, Rng.fromState(rngState), loop);
    const evalEvery = o.evalEvery ?? 1;
    const logEvery = o.logEvery ?? 0;
    const short = o.shortName ?? ((k: string) => k);
    const preempted = () => new PreemptedError(preemptSignal!, o.name, epoch, epoch > 0 || resumed ? lastFile : undefined);
    let partial = loop.partial;
    if (partial) {
      loop = { ...loop, partial: undefined };
      log(`[${o.name}] the checkpoint is inside epoch ${epoch + 1}: skipping its ${partial.batches} trained batch(es)`);
    }
    for (; epoch < o.epochs; epoch++) {
      if (stopOnSignals && preemptSignal) throw preempted();
      const rng = Rng.fromState(rngState);
      const progress = createProgress({ label: `[${o.name}] epoch ${epoch + 1}/${o.epochs}`, total: o.stepsPerEpoch, stream: o.progressStream });
      const t0 = performance.now();
      let lossSum = partial?.lossSum ?? 0;
      let seen = partial?.seen ?? 0;
      let lr = partial?.lr ?? 0;
      const sums: Record<string, number> = { ...partial?.sums };
      const dataWait: WaitMeter = { ms: (partial?.dataWaitSeconds ?? 0) * 1000 };
      const skip = partial?.batches ?? 0;
      const earlierTrainSeconds = partial?.trainSeconds ?? 0;
      partial = undefined;
      let batches = 0;
      for await (const batch of timeWaits(o.batches(epoch, rng), dataWait)) {
        // resuming a mid-epoch checkpoint: these batches were trained on before it (drawn again, so the RNG advances the same)
        if (batches++ < skip) continue;
        lr = o.schedule.at(step);
        const r = o.step(batch, lr, opt);
        if (r.n === 0) continue;
        step++;
        lossSum += r.loss * r.n;
        seen += r.n;
        for (const [k, v] of Object.entries(r.metrics ?? {})) sums[k] = (sums[k] ?? 0) + v * r.n;
        progress.tick(1, r.n, { loss: lossSum / seen, ...Object.fromEntries(Object.entries(sums).map(([k, v]) => [short(k), v / seen])), lr });
        if (logEvery > 0 && step % logEvery === 0) logger.log({ type: 'step', stage: o.name, epoch: epoch + 1, step, lr, loss: r.loss });
        if (stopOnSignals) {
          // one turn of the event loop, so a signal is seen even when batches come without I/O
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (preemptSignal) {
            if (!o.midEpochCheckpoint) throw preempted(); // the partial epoch is dropped: last.safetensors (end of the previous epoch) is the resume point
            const weights = o.weights();
            assertFinite(o as EpochLoopOptions<unknown>, epoch + 1, weights, undefined, lastFile, epoch > 0);
            const part: PartialEpoch = { batches, lossSum, seen, sums: { ...sums }, lr, trainSeconds: earlierTrainSeconds + (performance.now() - t0) / 1000, dataWaitSeconds: dataWait.ms / 1000 };
            // epoch = the full epochs done, rng = this epoch's generator at its start
            saveCheckpoint(lastFile, { weights, optimizer: opt.getState(), state: stateAt(epoch, step, Rng.fromState(rngState), { ...loop, partial: part }) });
            throw new PreemptedError(preemptSignal, o.name, epoch, lastFile, batches);
          }
        }
      }
      if (seen === 0) throw new Error(`[${o.name}] epoch ${epoch + 1} produced no training samples`);
      const trainSeconds = progress.finish() + earlierTrainSeconds;
      const doEval = o.evaluate !== undefined && (epoch + 1 === o.epochs || (evalEvery > 0 && (epoch + 1) % evalEvery === 0));
      const ev = doEval ? await o.evaluate!(epoch + 1) : undefined;
      const val: Record<string, number> | undefined = ev ? { ...(ev.loss !== undefined ? { loss: ev.loss } : {}), ...ev.metrics } : undefined;
      const record: EpochRecord = {
        epoch: epoch + 1,
        step,
        lr,
        trainLoss: lossSum / seen,
        train: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / seen])),
        ...(val ? { val } : {}),
        seconds: (performance.now() - t0) / 1000,
        trainSeconds,
        itemsPerSec: seen / trainSeconds,
        dataWaitSeconds: dataWait.ms / 1000,
      };
      const weights = o.weights();
      try {
        assertFinite(o as EpochLoopOptions<unknown>, epoch + 1, weights, ev?.loss, lastFile, epoch > 0);
      } catch (e) {
        logger.log({ type: 'error', stage: o.name, epoch: epoch + 1, message: (e as Error).message });
        throw e;
      }
      loop = { ...loop, history: [...loop.history, record], ...(val ? { lastVal: val } : {}) };
      let improved = false;
      if (o.best && val && val[o.best.metric] !== undefined) {
        const v = val[o.best.metric]!;
        improved = !loop.best || (o.best.mode === 'max' ? v > loop.best.value : v < loop.best.value);
        if (improved) loop = { ...loop, best: { metric: o.best.metric, value: v, epoch: epoch + 1 } };
      }
      state = stateAt(epoch + 1, step, new Rng(deriveSeed(...(o.seedPath as [number, ...number[]]), epoch + 1)), loop);
      rngState = state.rng!;
      // the log and best.safetensors first, last.safetensors last: a run killed in between re-runs
      // the epoch from the previous last.safetensors, drops the record from the log (the resumed
      // log covers epochs <= the checkpoint's) and rewrites best.safetensors identically
      logger.log({ type: 'epoch', stage: o.name, ...record, ...(ev?.details ? { details: ev.details } : {}) });
      if (improved) saveCheckpoint(bestFile, { weights, state });
      saveCheckpoint(lastFile, { weights, optimizer: opt.getState(), state });
      const trainLine = Object.entries(record.train).map(([k, v]) => ` ${short(k)} ${v.toFixed(4)}`).join('');
      const valLine = val ? ` | val${Object.entries(val).map(([k, v]) => ` ${short(k)} ${v.toFixed(4)}`).join('')}` : '';
      log(`[${o.name}] epoch ${epoch + 1}: train loss ${record.trainLoss.toFixed(4)}${trainLine}${valLine} | ${record.itemsPerSec.toFixed(1)} samples/s, waiting for data ${((100 * record.dataWaitSeconds) / trainSeconds).toFixed(1)}% of train time`);
      await o.afterEpoch?.(record);
    }
    let checkpoint = lastFile;
    if (o.final) {
      const weights = o.weights();
      assertFinite(o as EpochLoopOptions<unknown>, epoch, weights, undefined, lastFile, true);
      saveCheckpoint(finalFile, { weights, state });
      checkpoint = finalFile;
    }
    return { history: loop.history, state, checkpoint, reused: false, resumedFrom: resumed?.state.epoch ?? 0, changedOptions: changes };
  } finally {
    opt.dispose();
    if (stopOnSignals) for (const s of PREEMPT_SIGNALS) process.off(s, onSignal);
  }
}
