/**
 * ShuffleNetV2 (Ma et al. 2018) as torchvision builds it: `conv1` (conv3x3/s2, BN, ReLU),
 * `maxpool`, `stage2..4` of InvertedResidual units (`branch1` on strided units, `branch2`
 * always; stride-1 units split the channels in half), channel shuffle with 2 groups,
 * `conv5` (1x1 to 1024), global mean, `fc`.
 */
import * as tf from '@tensorflow/tfjs';
import { ChannelShuffle, ChannelSlice } from '../layers/custom.js';
import { activation, batchNorm, channels, conv, globalAvgPool, linear, maxPool, type SymbolicTensor } from '../layers/blocks.js';
import { DilationSchedule, TapCollector } from '../layers/stride.js';
import type { BuildResult, ModelEntry, ResolvedOptions } from '../types.js';

/** torchvision's `stages_repeats` and `stages_out_channels`. */
export const SHUFFLENET_V2_CONFIGS: Record<'shufflenet_v2_x0_5' | 'shufflenet_v2_x1_0', { repeats: number[]; channels: number[] }> = {
  shufflenet_v2_x0_5: { repeats: [4, 8, 4], channels: [24, 48, 96, 192, 1024] },
  shufflenet_v2_x1_0: { repeats: [4, 8, 4], channels: [24, 116, 232, 464, 1024] },
};

/**
 * One torchvision ShuffleNetV2 InvertedResidual unit named `name`. `downsampling` units (the first
 * of each stage: torchvision's stride-2 units) have two branches; with outputStride < 32 such a
 * unit may run at stride 1 with dilation, keeping its parameters.
 */
export function shuffleUnit(x: SymbolicTensor, name: string, out: number, downsampling: boolean, stride: number, dilation: number): SymbolicTensor {
  const inp = channels(x);
  const half = out / 2;
  if (!Number.isInteger(half)) throw new Error(`shufflenet_v2: unit '${name}' has an odd output width ${out}`);
  if (!downsampling && inp !== out) throw new Error(`shufflenet_v2: unit '${name}' keeps the width but gets ${inp} channels for ${out}`);
  const nominalStrided = downsampling;
  const branch2 = (t: SymbolicTensor) => {
    let y = conv(t, { name: `${name}.branch2.0`, filters: half, kernel: 1 });
    y = activation(batchNorm(y, `${name}.branch2.1`), 'relu', `${name}.branch2.2`);
    y = batchNorm(conv(y, { name: `${name}.branch2.3`, filters: half, kernel: 3, stride, dilation, depthwise: true }), `${name}.branch2.4`);
    y = conv(y, { name: `${name}.branch2.5`, filters: half, kernel: 1 });
    return activation(batchNorm(y, `${name}.branch2.6`), 'relu', `${name}.branch2.7`);
  };
  let merged: SymbolicTensor;
  if (nominalStrided) {
    let b1 = batchNorm(conv(x, { name: `${name}.branch1.0`, filters: inp, kernel: 3, stride, dilation, depthwise: true }), `${name}.branch1.1`);
    b1 = conv(b1, { name: `${name}.branch1.2`, filters: half, kernel: 1 });
    b1 = activation(batchNorm(b1, `${name}.branch1.3`), 'relu', `${name}.branch1.4`);
    merged = tf.layers.concatenate({ name: `${name}.cat`, axis: -1 }).apply([b1, branch2(x)]) as SymbolicTensor;
  } else {
    const x1 = new ChannelSlice({ name: `${name}.chunk0`, start: 0, size: half }).apply(x) as SymbolicTensor;
    const x2 = new ChannelSlice({ name: `${name}.chunk1`, start: half, size: half }).apply(x) as SymbolicTensor;
    merged = tf.layers.concatenate({ name: `${name}.cat`, axis: -1 }).apply([x1, branch2(x2)]) as SymbolicTensor;
  }
  return new ChannelShuffle({ name: `${name}.shuffle`, groups: 2 }).apply(merged) as SymbolicTensor;
}

/** Builds ShuffleNetV2 on `input`. */
export function buildShuffleNetV2(input: SymbolicTensor, arch: keyof typeof SHUFFLENET_V2_CONFIGS, opts: ResolvedOptions): BuildResult {
  if (opts.width !== 1) throw new Error(`${arch}: the width option is not supported; choose shufflenet_v2_x0_5 or shufflenet_v2_x1_0`);
  const cfg = SHUFFLENET_V2_CONFIGS[arch];
  const sched = new DilationSchedule(opts.outputStride);
  const taps = new TapCollector<SymbolicTensor>();
  let x = conv(input, { name: 'conv1.0', filters: cfg.channels[0]!, kernel: 3, stride: sched.step(2).stride });
  x = activation(batchNorm(x, 'conv1.1'), 'relu', 'conv1.2');
  sched.step(2);
  x = maxPool(x, 'maxpool', 3, 2, 1);
  taps.record(sched.nominal, x);
  cfg.repeats.forEach((n, s) => {
    for (let i = 0; i < n; i++) {
      const { stride, dilation } = sched.step(i === 0 ? 2 : 1);
      x = shuffleUnit(x, `stage${s + 2}.${i}`, cfg.channels[s + 1]!, i === 0, stride, dilation);
    }
    taps.record(sched.nominal, x);
  });
  x = conv(x, { name: 'conv5.0', filters: cfg.channels[4]!, kernel: 1 });
  x = activation(batchNorm(x, 'conv5.1'), 'relu', 'conv5.2');
  taps.record(sched.nominal, x);
  const picked = taps.pick([4, 8, 16, 32], arch);
  if (opts.features) return { taps: picked };
  return { taps: picked, logits: linear(globalAvgPool(x, 'avgpool'), 'fc', opts.numClasses) };
}

export const shufflenetV2Entries: ModelEntry[] = (Object.keys(SHUFFLENET_V2_CONFIGS) as Array<keyof typeof SHUFFLENET_V2_CONFIGS>).map((name) => ({
  name,
  family: 'shufflenet_v2',
  description: `torchvision ${name}`,
  defaults: { numClasses: 1000, inputSize: 224 },
  classifier: 'fc',
  dilatable: true,
  build: (input, opts) => buildShuffleNetV2(input, name, opts),
}));
