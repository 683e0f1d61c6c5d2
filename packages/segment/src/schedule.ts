/** The DeepLab "poly" learning-rate policy (not in @refconv/engine yet). */
import type { LrSchedule } from '@refconv/engine';

/** Options of {@link createPolySchedule}. */
export interface PolyOptions {
  baseLr: number;
  /** Total optimizer steps of the run. */
  totalSteps: number;
  /** Exponent (0.9 in DeepLab and torchvision's segmentation reference). */
  power?: number;
  /** Linear warmup steps from `baseLr * 0.01` (default 0). */
  warmupSteps?: number;
}

/**
 * `lr(step) = baseLr * (1 - step / totalSteps) ^ power`, as torchvision's reference
 * (`LambdaLR(lambda x: (1 - x / iters) ** 0.9)`), after an optional linear warmup.
 */
export function createPolySchedule(opts: PolyOptions): LrSchedule {
  const power = opts.power ?? 0.9;
  const warm = opts.warmupSteps ?? 0;
  if (!(opts.totalSteps > 0)) throw new Error(`poly schedule: totalSteps must be > 0, got ${opts.totalSteps}`);
  if (warm < 0 || warm >= opts.totalSteps) throw new Error(`poly schedule: warmupSteps must be in [0, ${opts.totalSteps}), got ${warm}`);
  return {
    at(step: number): number {
      if (step < warm) return opts.baseLr * (0.01 + (0.99 * step) / warm);
      return opts.baseLr * Math.pow(Math.max(0, 1 - step / opts.totalSteps), power);
    },
    describe: () => ({ kind: 'poly', baseLr: opts.baseLr, totalSteps: opts.totalSteps, power, warmupSteps: warm }),
  };
}
