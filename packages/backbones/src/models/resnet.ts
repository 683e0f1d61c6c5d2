/**
 * ResNet (He et al. 2016) exactly as torchvision builds it: v1.5 bottleneck (stride on the 3x3),
 * `conv1 -> bn1 -> relu -> maxpool -> layer1..4 -> avgpool -> fc`, downsample = 1x1 conv + BN.
 * Parameter names equal torchvision's state-dict keys.
 */
import type * as tf from '@tensorflow/tfjs';
import { activation, add, batchNorm, channels, conv, globalAvgPool, linear, maxPool, type SymbolicTensor } from '../layers/blocks.js';
import type { BuildResult, ModelEntry, ResolvedOptions } from '../types.js';

/** Residual block kind. */
export type ResNetBlock = 'basic' | 'bottleneck';

/** One ResNet depth: block kind and blocks per stage. */
export interface ResNetConfig {
  block: ResNetBlock;
  layers: [number, number, number, number];
}

export const RESNET_CONFIGS: Record<'resnet18' | 'resnet34' | 'resnet50' | 'resnet101', ResNetConfig> = {
  resnet18: { block: 'basic', layers: [2, 2, 2, 2] },
  resnet34: { block: 'basic', layers: [3, 4, 6, 3] },
  resnet50: { block: 'bottleneck', layers: [3, 4, 6, 3] },
  resnet101: { block: 'bottleneck', layers: [3, 4, 23, 3] },
};

const EXPANSION: Record<ResNetBlock, number> = { basic: 1, bottleneck: 4 };

interface BlockArgs {
  name: string;
  planes: number;
  stride: number;
  dilation: number;
  downsample: boolean;
}

/** Projection shortcut: `<name>.downsample.0` 1x1 conv (strided), `<name>.downsample.1` BN. */
function downsample(x: SymbolicTensor, name: string, filters: number, stride: number): SymbolicTensor {
  const y = conv(x, { name: `${name}.downsample.0`, filters, kernel: 1, stride });
  return batchNorm(y, `${name}.downsample.1`);
}

/**
 * torchvision BasicBlock. torchvision refuses dilation > 1 here; we allow it (both 3x3 convs
 * dilated) so ResNet-18/34 can serve as DeepLab backbones.
 */
export function basicBlock(x: SymbolicTensor, a: BlockArgs): SymbolicTensor {
  let y = conv(x, { name: `${a.name}.conv1`, filters: a.planes, kernel: 3, stride: a.stride, dilation: a.dilation });
  y = activation(batchNorm(y, `${a.name}.bn1`), 'relu', `${a.name}.relu1`);
  y = conv(y, { name: `${a.name}.conv2`, filters: a.planes, kernel: 3, dilation: a.dilation });
  y = batchNorm(y, `${a.name}.bn2`);
  const identity = a.downsample ? downsample(x, a.name, a.planes, a.stride) : x;
  return activation(add(y, identity, `${a.name}.add`), 'relu', `${a.name}.relu`);
}

/** torchvision Bottleneck (v1.5: the stride sits on conv2, the 3x3). */
export function bottleneckBlock(x: SymbolicTensor, a: BlockArgs): SymbolicTensor {
  const out = a.planes * EXPANSION.bottleneck;
  let y = conv(x, { name: `${a.name}.conv1`, filters: a.planes, kernel: 1 });
  y = activation(batchNorm(y, `${a.name}.bn1`), 'relu', `${a.name}.relu1`);
  y = conv(y, { name: `${a.name}.conv2`, filters: a.planes, kernel: 3, stride: a.stride, dilation: a.dilation });
  y = activation(batchNorm(y, `${a.name}.bn2`), 'relu', `${a.name}.relu2`);
  y = conv(y, { name: `${a.name}.conv3`, filters: out, kernel: 1 });
  y = batchNorm(y, `${a.name}.bn3`);
  const identity = a.downsample ? downsample(x, a.name, out, a.stride) : x;
  return activation(add(y, identity, `${a.name}.add`), 'relu', `${a.name}.relu`);
}

/** Which stages (layer2..4) replace stride by dilation, as torchvision's `replace_stride_with_dilation`. */
function dilatedStages(outputStride: 8 | 16 | 32): [boolean, boolean, boolean] {
  return outputStride === 32 ? [false, false, false] : outputStride === 16 ? [false, false, true] : [false, true, true];
}

/** Base width (64 * width); must come out a positive integer. */
export function scaledWidth(base: number, width: number, arch: string): number {
  const w = base * width;
  if (!(Number.isInteger(w) && w > 0)) throw new Error(`${arch}: width ${width} gives ${w} base channels; choose a width with ${base} * width a positive integer`);
  return w;
}

/** Builds a torchvision ResNet on `input`. */
export function buildResNet(input: SymbolicTensor, cfg: ResNetConfig, opts: ResolvedOptions, arch: string): BuildResult {
  const base = scaledWidth(64, opts.width, arch);
  const block = cfg.block === 'basic' ? basicBlock : bottleneckBlock;
  const expansion = EXPANSION[cfg.block];
  let x = conv(input, { name: 'conv1', filters: base, kernel: 7, stride: 2 });
  x = activation(batchNorm(x, 'bn1'), 'relu', 'relu');
  x = maxPool(x, 'maxpool', 3, 2, 1);

  const dilate = dilatedStages(opts.outputStride);
  let dilation = 1;
  const taps: BuildResult['taps'] = [];
  for (let stage = 0; stage < 4; stage++) {
    const planes = base * 2 ** stage;
    let stride = stage === 0 ? 1 : 2;
    const previousDilation = dilation;
    if (stage > 0 && dilate[stage - 1]) {
      dilation *= stride;
      stride = 1;
    }
    for (let i = 0; i < cfg.layers[stage]!; i++) {
      const first = i === 0;
      x = block(x, {
        name: `layer${stage + 1}.${i}`,
        planes,
        stride: first ? stride : 1,
        dilation: first ? previousDilation : dilation,
        downsample: first && (stride !== 1 || channels(x) !== planes * expansion),
      });
    }
    taps.push({ tensor: x, nominalStride: 4 * 2 ** stage });
  }
  if (opts.features) return { taps };
  const pooled = globalAvgPool(x, 'avgpool');
  return { taps, logits: linear(pooled as tf.SymbolicTensor, 'fc', opts.numClasses) };
}

/** Registry entries for resnet18/34/50/101. */
export const resnetEntries: ModelEntry[] = (Object.keys(RESNET_CONFIGS) as Array<keyof typeof RESNET_CONFIGS>).map((name) => ({
  name,
  family: 'resnet',
  description: `torchvision ${name} (${RESNET_CONFIGS[name].block} blocks ${RESNET_CONFIGS[name].layers.join('-')})`,
  defaults: { numClasses: 1000, inputSize: 224 },
  classifier: 'fc',
  dilatable: true,
  build: (input, opts) => buildResNet(input, RESNET_CONFIGS[name], opts, name),
}));
