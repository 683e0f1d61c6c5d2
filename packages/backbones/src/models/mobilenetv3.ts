/**
 * MobileNetV3-Small/Large (Howard et al. 2019) as torchvision builds them: BatchNorm eps 1e-3 /
 * momentum 0.01, hardswish, squeeze-excitation with a hardsigmoid gate and
 * `_make_divisible(expanded // 4, 8)` squeeze channels, `features.i.block.j` naming,
 * classifier `Linear -> Hardswish -> Dropout -> Linear` (`classifier.0` / `classifier.3`).
 */
import * as tf from '@tensorflow/tfjs';
import { activation, add, type ActivationKind, channels, conv, convNormAct, dropout, globalAvgPool, linear, type NormSettings, type SymbolicTensor } from '../layers/blocks.js';
import { DilationSchedule, TapCollector } from '../layers/stride.js';
import type { BuildResult, ModelEntry, ResolvedOptions } from '../types.js';
import { makeDivisible } from './mobilenetv2.js';

const V3_BN: NormSettings = { eps: 1e-3, momentum: 0.01 };

/** torchvision InvertedResidualConfig before width scaling: in, kernel, expanded, out, SE, hardswish, stride. */
export type BneckRow = readonly [number, number, number, number, boolean, 'RE' | 'HS', number];

/** torchvision `_mobilenet_v3_conf` tables (non-reduced tail); the last entry is `last_channel`. */
export const MOBILENET_V3_CONFIGS: Record<'mobilenet_v3_large' | 'mobilenet_v3_small', { rows: BneckRow[]; lastChannel: number }> = {
  mobilenet_v3_large: {
    rows: [
      [16, 3, 16, 16, false, 'RE', 1],
      [16, 3, 64, 24, false, 'RE', 2],
      [24, 3, 72, 24, false, 'RE', 1],
      [24, 5, 72, 40, true, 'RE', 2],
      [40, 5, 120, 40, true, 'RE', 1],
      [40, 5, 120, 40, true, 'RE', 1],
      [40, 3, 240, 80, false, 'HS', 2],
      [80, 3, 200, 80, false, 'HS', 1],
      [80, 3, 184, 80, false, 'HS', 1],
      [80, 3, 184, 80, false, 'HS', 1],
      [80, 3, 480, 112, true, 'HS', 1],
      [112, 3, 672, 112, true, 'HS', 1],
      [112, 5, 672, 160, true, 'HS', 2],
      [160, 5, 960, 160, true, 'HS', 1],
      [160, 5, 960, 160, true, 'HS', 1],
    ],
    lastChannel: 1280,
  },
  mobilenet_v3_small: {
    rows: [
      [16, 3, 16, 16, true, 'RE', 2],
      [16, 3, 72, 24, false, 'RE', 2],
      [24, 3, 88, 24, false, 'RE', 1],
      [24, 5, 96, 40, true, 'HS', 2],
      [40, 5, 240, 40, true, 'HS', 1],
      [40, 5, 240, 40, true, 'HS', 1],
      [40, 5, 120, 48, true, 'HS', 1],
      [48, 5, 144, 48, true, 'HS', 1],
      [48, 5, 288, 96, true, 'HS', 2],
      [96, 5, 576, 96, true, 'HS', 1],
      [96, 5, 576, 96, true, 'HS', 1],
    ],
    lastChannel: 1024,
  },
};

/** torchvision SqueezeExcitation(ReLU, Hardsigmoid): `<name>.fc1`, `<name>.fc2` are 1x1 convs with bias. */
export function squeezeExcitation(x: SymbolicTensor, name: string, squeeze: number): SymbolicTensor {
  const c = channels(x);
  let s = globalAvgPool(x, `${name}.avgpool`);
  s = tf.layers.reshape({ name: `${name}.reshape`, targetShape: [1, 1, c] }).apply(s) as SymbolicTensor;
  s = activation(conv(s, { name: `${name}.fc1`, filters: squeeze, kernel: 1, bias: true }), 'relu', `${name}.activation`);
  s = activation(conv(s, { name: `${name}.fc2`, filters: c, kernel: 1, bias: true }), 'hardsigmoid', `${name}.scale_activation`);
  return tf.layers.multiply({ name: `${name}.mul` }).apply([x, s]) as SymbolicTensor;
}

interface V3BlockArgs {
  name: string;
  kernel: number;
  expanded: number;
  out: number;
  se: boolean;
  act: ActivationKind;
  stride: number;
  dilation: number;
}

/** torchvision MobileNetV3 InvertedResidual: `<name>.block.{j}`. */
export function v3InvertedResidual(x: SymbolicTensor, a: V3BlockArgs): SymbolicTensor {
  const inp = channels(x);
  let y = x;
  let j = 0;
  if (a.expanded !== inp) y = convNormAct(y, `${a.name}.block.${j++}`, { filters: a.expanded, kernel: 1 }, a.act, V3_BN);
  y = convNormAct(y, `${a.name}.block.${j++}`, { filters: a.expanded, kernel: a.kernel, stride: a.stride, dilation: a.dilation, depthwise: true }, a.act, V3_BN);
  if (a.se) y = squeezeExcitation(y, `${a.name}.block.${j++}`, makeDivisible(Math.floor(a.expanded / 4), 8));
  y = convNormAct(y, `${a.name}.block.${j++}`, { filters: a.out, kernel: 1 }, 'none', V3_BN);
  return a.stride === 1 && inp === a.out ? add(y, x, `${a.name}.add`) : y;
}

/** Builds MobileNetV3 on `input`. */
export function buildMobileNetV3(input: SymbolicTensor, arch: keyof typeof MOBILENET_V3_CONFIGS, opts: ResolvedOptions): BuildResult {
  const w = opts.width;
  const adjust = (c: number) => makeDivisible(c * w, 8);
  const { rows, lastChannel } = MOBILENET_V3_CONFIGS[arch];
  const sched = new DilationSchedule(opts.outputStride);
  const taps = new TapCollector<SymbolicTensor>();
  let idx = 0;
  let x = convNormAct(input, `features.${idx++}`, { filters: adjust(rows[0]![0]), kernel: 3, stride: sched.step(2).stride }, 'hardswish', V3_BN);
  taps.record(sched.nominal, x);
  for (const [, kernel, expanded, out, se, act, s] of rows) {
    const { stride, dilation } = sched.step(s);
    x = v3InvertedResidual(x, {
      name: `features.${idx++}`,
      kernel,
      expanded: adjust(expanded),
      out: adjust(out),
      se,
      act: act === 'HS' ? 'hardswish' : 'relu',
      stride,
      dilation,
    });
    taps.record(sched.nominal, x);
  }
  const lastConv = 6 * channels(x);
  x = convNormAct(x, `features.${idx++}`, { filters: lastConv, kernel: 1 }, 'hardswish', V3_BN);
  taps.record(sched.nominal, x);
  const picked = taps.pick([4, 8, 16, 32], arch);
  if (opts.features) return { taps: picked };
  let y = globalAvgPool(x, 'avgpool');
  y = activation(linear(y, 'classifier.0', adjust(lastChannel)), 'hardswish', 'classifier.1');
  y = dropout(y, 'classifier.2', opts.dropout ?? 0.2);
  return { taps: picked, logits: linear(y, 'classifier.3', opts.numClasses) };
}

export const mobilenetV3Entries: ModelEntry[] = (['mobilenet_v3_large', 'mobilenet_v3_small'] as const).map((name) => ({
  name,
  family: 'mobilenet_v3',
  description: `torchvision ${name} (width multiplier via width; outputStride 16 = torchvision's dilated=True)`,
  defaults: { numClasses: 1000, inputSize: 224 },
  classifier: 'classifier.3',
  dilatable: true,
  build: (input, opts) => buildMobileNetV3(input, name, opts),
}));
