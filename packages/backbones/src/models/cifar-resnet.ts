/**
 * CIFAR ResNets (He et al. 2016, section 4.2): a 3x3 stem with 16 channels, three stages of n
 * BasicBlocks with 16/32/64 channels at strides 1/2/4, depth 6n+2 (ResNet-20: n=3, ResNet-56: n=9),
 * global average pooling and a linear classifier. Shortcuts are the paper's parameter-free
 * "option A" (stride-2 subsampling + zero channels), which gives the published parameter counts
 * (0.27M / 0.85M). Names follow torchvision's ResNet: conv1, bn1, layer1.0.conv1, ..., fc.
 */
import * as tf from '@tensorflow/tfjs';
import { ChannelZeroPad } from '../layers/custom.js';
import { activation, add, batchNorm, channels, conv, globalAvgPool, linear, type SymbolicTensor } from '../layers/blocks.js';
import type { BuildResult, ModelEntry, ResolvedOptions } from '../types.js';
import { scaledWidth } from './resnet.js';

export const CIFAR_RESNET_DEPTHS = { cifar_resnet20: 3, cifar_resnet56: 9 } as const;

/** Option A shortcut: `x[:, :, ::2, ::2]` then zero channels split evenly before/after. */
function optionAShortcut(x: SymbolicTensor, name: string, planes: number, stride: number): SymbolicTensor {
  let y = x;
  if (stride > 1) y = tf.layers.maxPooling2d({ name: `${name}.shortcut.subsample`, poolSize: 1, strides: stride, padding: 'valid' }).apply(y) as SymbolicTensor;
  const extra = planes - channels(x);
  const before = Math.floor(extra / 2);
  return new ChannelZeroPad({ name: `${name}.shortcut.pad`, before, after: extra - before }).apply(y) as SymbolicTensor;
}

function cifarBlock(x: SymbolicTensor, name: string, planes: number, stride: number): SymbolicTensor {
  let y = conv(x, { name: `${name}.conv1`, filters: planes, kernel: 3, stride });
  y = activation(batchNorm(y, `${name}.bn1`), 'relu', `${name}.relu1`);
  y = batchNorm(conv(y, { name: `${name}.conv2`, filters: planes, kernel: 3 }), `${name}.bn2`);
  const identity = stride !== 1 || channels(x) !== planes ? optionAShortcut(x, name, planes, stride) : x;
  return activation(add(y, identity, `${name}.add`), 'relu', `${name}.relu`);
}

/** Builds a CIFAR ResNet with `n` blocks per stage. */
export function buildCifarResNet(input: SymbolicTensor, n: number, opts: ResolvedOptions, arch: string): BuildResult {
  if (opts.outputStride !== 32) throw new Error(`${arch}: outputStride ${opts.outputStride} is not supported (CIFAR ResNets reduce only 4x)`);
  const base = scaledWidth(16, opts.width, arch);
  let x = conv(input, { name: 'conv1', filters: base, kernel: 3 });
  x = activation(batchNorm(x, 'bn1'), 'relu', 'relu');
  const taps: BuildResult['taps'] = [];
  for (let stage = 0; stage < 3; stage++) {
    for (let i = 0; i < n; i++) {
      x = cifarBlock(x, `layer${stage + 1}.${i}`, base * 2 ** stage, stage > 0 && i === 0 ? 2 : 1);
    }
    taps.push({ tensor: x, nominalStride: 2 ** stage });
  }
  if (opts.features) return { taps };
  return { taps, logits: linear(globalAvgPool(x, 'avgpool'), 'fc', opts.numClasses) };
}

export const cifarResnetEntries: ModelEntry[] = (Object.keys(CIFAR_RESNET_DEPTHS) as Array<keyof typeof CIFAR_RESNET_DEPTHS>).map((name) => ({
  name,
  family: 'cifar_resnet',
  description: `CIFAR ResNet-${6 * CIFAR_RESNET_DEPTHS[name] + 2} (He et al., option-A shortcuts) for 28-32 px inputs`,
  defaults: { numClasses: 10, inputSize: 32 },
  classifier: 'fc',
  dilatable: false,
  build: (input, opts) => buildCifarResNet(input, CIFAR_RESNET_DEPTHS[name], opts, name),
}));
