/**
 * The segmentation protocol as a library call (the CLI only parses flags): train a segmenter, or
 * start from a trained one (`from`) and fine-tune it plainly (the equal-epoch control) or refocus
 * it with RefConv (`refconv`) and train; a refocused run ends with the deployment check (the fused
 * model is the plain segmenter: same params, FLOPs and predictions).
 */
import { fuseCheck, type FuseReport } from './fuse-check.js';
import { train, type TrainOptions, type TrainResult } from './train.js';

/** What {@link runSegmentation} returns. */
export interface SegmentationRunResult extends TrainResult {
  /** The fused-equals-plain check of a refocused run. */
  fuse?: FuseReport;
}

/** Default run folder name: `<format>-<arch>`, with `-refconv` or `-finetune` when starting from a checkpoint. */
export function defaultRunName(o: Pick<TrainOptions, 'format' | 'spec' | 'refconv' | 'from'>): string {
  return `${o.format}-${o.spec.arch}${o.refconv ? '-refconv' : o.from ? '-finetune' : ''}`;
}

/** Runs the protocol (see module doc). */
export async function runSegmentation(opts: TrainOptions): Promise<SegmentationRunResult> {
  if (opts.refconv && !opts.from) throw new Error('--refconv refocuses a trained segmenter: give its checkpoint with --from');
  const result = await train(opts);
  if (!opts.refconv) return result;
  return { ...result, fuse: await fuseCheck(result.checkpoint, { inputSize: opts.cropSize, factory: opts.backboneFactory }) };
}
