/**
 * MobileNetV1 (Howard et al. 2017). torchvision has none, so the layout is the common PyTorch
 * one (and the one our reference tool builds): `features.0` = conv3x3/s2 -> BN -> ReLU
 * (`features.0.0`, `features.0.1`), then 13 depthwise-separable blocks `features.i` =
 * dw3x3 -> BN -> ReLU -> pw1x1 -> BN -> ReLU (`features.i.0`, `.1`, `.3`, `.4`),
 * global average pooling, `fc`. ReLU as in the paper (TF-slim used ReLU6). Width multiplier
 * alpha: channels `int(c * alpha)`, as Keras' MobileNet. 1000 classes: 4,231,976 parameters.
 */
import { activation, batchNorm, conv, globalAvgPool, linear, type SymbolicTensor } from '../layers/blocks.js';
import { DilationSchedule, TapCollector } from '../layers/stride.js';
import type { BuildResult, ModelEntry, ResolvedOptions } from '../types.js';

/** [output channels, stride] of the 13 depthwise-separable blocks. */
export const MOBILENET_V1_BLOCKS: ReadonlyArray<readonly [number, number]> = [
  [64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2],
  [512, 1], [512, 1], [512, 1], [512, 1], [512, 1], [1024, 2], [1024, 1],
];

function scaled(c: number, alpha: number): number {
  const v = Math.trunc(c * alpha);
  if (v < 1) throw new Error(`mobilenet_v1: width ${alpha} leaves ${c} channels at ${v}`);
  return v;
}

/** Depthwise-separable block `features.i`. */
function separable(x: SymbolicTensor, name: string, inChannels: number, out: number, stride: number, dilation: number): SymbolicTensor {
  let y = conv(x, { name: `${name}.0`, filters: inChannels, kernel: 3, stride, dilation, depthwise: true });
  y = activation(batchNorm(y, `${name}.1`), 'relu', `${name}.2`);
  y = conv(y, { name: `${name}.3`, filters: out, kernel: 1 });
  return activation(batchNorm(y, `${name}.4`), 'relu', `${name}.5`);
}

/** Builds MobileNetV1 on `input`. */
export function buildMobileNetV1(input: SymbolicTensor, opts: ResolvedOptions): BuildResult {
  const sched = new DilationSchedule(opts.outputStride);
  const taps = new TapCollector<SymbolicTensor>();
  let c = scaled(32, opts.width);
  let x = conv(input, { name: 'features.0.0', filters: c, kernel: 3, stride: sched.step(2).stride });
  x = activation(batchNorm(x, 'features.0.1'), 'relu', 'features.0.2');
  taps.record(sched.nominal, x);
  MOBILENET_V1_BLOCKS.forEach(([out, s], i) => {
    const { stride, dilation } = sched.step(s);
    const o = scaled(out, opts.width);
    x = separable(x, `features.${i + 1}`, c, o, stride, dilation);
    c = o;
    taps.record(sched.nominal, x);
  });
  const picked = taps.pick([4, 8, 16, 32], 'mobilenet_v1');
  if (opts.features) return { taps: picked };
  return { taps: picked, logits: linear(globalAvgPool(x, 'avgpool'), 'fc', opts.numClasses) };
}

export const mobilenetV1Entries: ModelEntry[] = [
  {
    name: 'mobilenet_v1',
    family: 'mobilenet_v1',
    description: 'MobileNetV1 (width multiplier alpha via width), PyTorch Sequential naming',
    defaults: { numClasses: 1000, inputSize: 224 },
    classifier: 'fc',
    dilatable: true,
    build: (input, opts) => buildMobileNetV1(input, opts),
  },
];
