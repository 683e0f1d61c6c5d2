/**
 * Learning-rate schedules evaluated per iteration (optimizer step), as timm's
 * `CosineLRScheduler(..., t_in_epochs=False)` and torchvision's reference recipe
 * (`LinearLR` warmup then `CosineAnnealingLR`, here stepped per iteration).
 */

/** Options of {@link warmupCosineLr}. */
export interface WarmupCosineOptions {
  /** Peak learning rate, reached at the end of warmup. */
  baseLr: number;
  /** Total number of optimizer steps of the run (epochs * steps per epoch). */
  totalSteps: number;
  /** Linear warmup length in steps (0 = none). */
  warmupSteps?: number;
  /**
   * Learning rate at step 0 as a fraction of `baseLr` (torchvision `LinearLR(start_factor)`,
   * default 0.01). Ignored without warmup.
   */
  warmupStartFactor?: number;
  /** Floor of the cosine (timm `lr_min`, torchvision `eta_min`), default 0. */
  minLr?: number;
}

/**
 * Learning rate to use for optimizer step `step` (0-based).
 *
 * - `step < warmupSteps`: `baseLr * (f + (1 - f) * step / warmupSteps)`, f = warmupStartFactor;
 * - afterwards, with `t = step - warmupSteps`, `T = totalSteps - warmupSteps`:
 *   `minLr + (baseLr - minLr) * (1 + cos(pi * t / T)) / 2` (cosine starts after warmup,
 *   like torchvision's SequentialLR and timm's `warmup_prefix=True`).
 *
 * Steps at or beyond `totalSteps` return `minLr`.
 */
export function warmupCosineLr(step: number, opts: WarmupCosineOptions): number {
  const { baseLr, totalSteps } = opts;
  const warmupSteps = opts.warmupSteps ?? 0;
  const startFactor = opts.warmupStartFactor ?? 0.01;
  const minLr = opts.minLr ?? 0;
  if (!(totalSteps > 0)) throw new Error(`warmupCosineLr: totalSteps must be > 0, got ${totalSteps}`);
  if (warmupSteps < 0 || warmupSteps > totalSteps) {
    throw new Error(`warmupCosineLr: warmupSteps must be in [0, totalSteps=${totalSteps}], got ${warmupSteps}`);
  }
  if (step < 0) throw new Error(`warmupCosineLr: step must be >= 0, got ${step}`);
  if (step < warmupSteps) return baseLr * (startFactor + ((1 - startFactor) * step) / warmupSteps);
  if (step >= totalSteps) return minLr;
  const t = step - warmupSteps;
  const T = totalSteps - warmupSteps;
  return minLr + ((baseLr - minLr) * (1 + Math.cos((Math.PI * t) / T))) / 2;
}

/** A schedule as a function of the step, with its options kept for logs and checkpoints. */
export interface LrSchedule {
  /** Learning rate at optimizer step `step` (0-based). */
  at(step: number): number;
  /** Plain-data description for reports. */
  describe(): Record<string, number | string>;
}

/** {@link warmupCosineLr} bound to its options. */
export function createWarmupCosineSchedule(opts: WarmupCosineOptions): LrSchedule {
  warmupCosineLr(0, opts); // validate once, up front
  return {
    at: (step) => warmupCosineLr(step, opts),
    describe: () => ({ kind: 'warmup-cosine', ...opts }),
  };
}

/** Constant learning rate (useful for tests and for fine-tuning probes). */
export function createConstantSchedule(lr: number): LrSchedule {
  return { at: () => lr, describe: () => ({ kind: 'constant', lr }) };
}

/** Options of {@link createPolySchedule}. */
export interface PolyOptions {
  baseLr: number;
  /** Total optimizer steps of the run. */
  totalSteps: number;
  /** Exponent (0.9 in DeepLab and torchvision's segmentation reference). */
  power?: number;
  /** Linear warmup steps (default 0). */
  warmupSteps?: number;
  /** Learning rate at step 0 as a fraction of `baseLr` (default 0.01). Ignored without warmup. */
  warmupStartFactor?: number;
}

/**
 * The DeepLab "poly" policy: `lr(step) = baseLr * (1 - step / totalSteps) ^ power`, as
 * torchvision's segmentation reference (`LambdaLR(lambda x: (1 - x / iters) ** 0.9)`), after an
 * optional linear warmup from `baseLr * warmupStartFactor`.
 */
export function createPolySchedule(opts: PolyOptions): LrSchedule {
  const power = opts.power ?? 0.9;
  const warm = opts.warmupSteps ?? 0;
  const f = opts.warmupStartFactor ?? 0.01;
  if (!(opts.totalSteps > 0)) throw new Error(`poly schedule: totalSteps must be > 0, got ${opts.totalSteps}`);
  if (warm < 0 || warm >= opts.totalSteps) throw new Error(`poly schedule: warmupSteps must be in [0, ${opts.totalSteps}), got ${warm}`);
  return {
    at(step: number): number {
      if (step < warm) return opts.baseLr * (f + ((1 - f) * step) / warm);
      return opts.baseLr * Math.pow(Math.max(0, 1 - step / opts.totalSteps), power);
    },
    describe: () => ({ kind: 'poly', baseLr: opts.baseLr, totalSteps: opts.totalSteps, power, warmupSteps: warm }),
  };
}
