/**
 * MobileNetV2 (Sandler et al. 2018) as torchvision builds it: `features.0` stem
 * (Conv2dNormActivation, ReLU6), `features.1..17` inverted residuals (`features.i.conv.*`),
 * `features.18` 1x1 conv to 1280, global pooling, `classifier.0` Dropout, `classifier.1` Linear.
 * Channels are rounded with torchvision's `_make_divisible(c * width, 8)`.
 */
import { add, batchNorm, channels, conv, convNormAct, dropout, globalAvgPool, linear, type SymbolicTensor } from '../layers/blocks.js';
import { DilationSchedule, TapCollector } from '../layers/stride.js';
import type { BuildResult, ModelEntry, ResolvedOptions } from '../types.js';

/** torchvision's `_make_divisible`: round to the nearest multiple of `divisor`, never more than 10% down. */
export function makeDivisible(v: number, divisor = 8, minValue?: number): number {
  const min = minValue ?? divisor;
  let newV = Math.max(min, Math.floor(Math.trunc(v + divisor / 2) / divisor) * divisor);
  if (newV < 0.9 * v) newV += divisor;
  return newV;
}

/** [expand ratio t, channels c, repeats n, first stride s], torchvision's `inverted_residual_setting`. */
export const MOBILENET_V2_SETTING: ReadonlyArray<readonly [number, number, number, number]> = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

/** Variant knobs: the CIFAR variant removes the stem stride and the first stride-2 stage's stride. */
export interface MobileNetV2Variant {
  stemStride: number;
  /** Strides of the seven stages (overrides the table's s). */
  stageStrides: number[];
}

const IMAGENET: MobileNetV2Variant = { stemStride: 2, stageStrides: MOBILENET_V2_SETTING.map((r) => r[3]) };
const CIFAR: MobileNetV2Variant = { stemStride: 1, stageStrides: [1, 1, 2, 2, 1, 2, 1] };

/** torchvision InvertedResidual: `<name>.conv.{0..3}` (expand pw, dw, project pw, BN). */
export function invertedResidual(x: SymbolicTensor, name: string, out: number, stride: number, dilation: number, expandRatio: number): SymbolicTensor {
  const inp = channels(x);
  const hidden = Math.round(inp * expandRatio);
  let y = x;
  let i = 0;
  if (expandRatio !== 1) y = convNormAct(y, `${name}.conv.${i++}`, { filters: hidden, kernel: 1 }, 'relu6');
  y = convNormAct(y, `${name}.conv.${i++}`, { filters: hidden, kernel: 3, stride, dilation, depthwise: true }, 'relu6');
  y = conv(y, { name: `${name}.conv.${i++}`, filters: out, kernel: 1 });
  y = batchNorm(y, `${name}.conv.${i++}`);
  return stride === 1 && inp === out ? add(x, y, `${name}.add`) : y;
}

/** Builds MobileNetV2 (or its CIFAR variant) on `input`. */
export function buildMobileNetV2(input: SymbolicTensor, opts: ResolvedOptions, variant: MobileNetV2Variant): BuildResult {
  const w = opts.width;
  if (!(w > 0)) throw new Error(`mobilenet_v2: width must be positive, got ${w}`);
  const sched = new DilationSchedule(opts.outputStride);
  const taps = new TapCollector<SymbolicTensor>();
  let idx = 0;
  const stem = sched.step(variant.stemStride);
  let x = convNormAct(input, `features.${idx++}`, { filters: makeDivisible(32 * w), kernel: 3, stride: stem.stride }, 'relu6');
  taps.record(sched.nominal, x);
  MOBILENET_V2_SETTING.forEach(([t, c, n], stage) => {
    const out = makeDivisible(c * w);
    for (let i = 0; i < n; i++) {
      const { stride, dilation } = sched.step(i === 0 ? variant.stageStrides[stage]! : 1);
      x = invertedResidual(x, `features.${idx++}`, out, stride, dilation, t);
      taps.record(sched.nominal, x);
    }
  });
  x = convNormAct(x, `features.${idx++}`, { filters: makeDivisible(1280 * Math.max(1, w)), kernel: 1 }, 'relu6');
  taps.record(sched.nominal, x);
  const strides = variant.stemStride === 1 ? [2, 4, 8] : [4, 8, 16, 32];
  const picked = taps.pick(strides, 'mobilenet_v2');
  if (opts.features) return { taps: picked };
  const pooled = dropout(globalAvgPool(x, 'avgpool'), 'classifier.0', opts.dropout ?? 0.2);
  return { taps: picked, logits: linear(pooled, 'classifier.1', opts.numClasses) };
}

export const mobilenetV2Entries: ModelEntry[] = [
  {
    name: 'mobilenet_v2',
    family: 'mobilenet_v2',
    description: 'torchvision mobilenet_v2 (width multiplier via width)',
    defaults: { numClasses: 1000, inputSize: 224 },
    classifier: 'classifier.1',
    dilatable: true,
    build: (input, opts) => buildMobileNetV2(input, opts, IMAGENET),
  },
  {
    name: 'mobilenet_v2_cifar',
    family: 'mobilenet_v2',
    description: 'MobileNetV2 for 28-32 px inputs: stride-1 stem and stride-1 first 24-channel stage (total stride 8), torchvision names',
    defaults: { numClasses: 10, inputSize: 32 },
    classifier: 'classifier.1',
    dilatable: false,
    build: (input, opts) => {
      if (opts.outputStride !== 32) throw new Error(`mobilenet_v2_cifar: outputStride ${opts.outputStride} is not supported`);
      return buildMobileNetV2(input, opts, CIFAR);
    },
  },
];
