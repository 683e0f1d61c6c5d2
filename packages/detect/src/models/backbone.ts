/**
 * Backbones for the detectors: a LayersModel mapping `[B, H, W, 3]` images to the feature
 * maps C2..C5 (strides 4, 8, 16, 32), as `@refconv/backbones` `createModel(arch, { features: true })`
 * returns them. `tiny` is a small plain ConvNet defined here for tests and quick CPU runs.
 */
import * as tf from '@tensorflow/tfjs';
import * as backbones from '@refconv/backbones';

/** Options of {@link createBackbone}. */
export interface BackboneOptions {
  /** Architecture name: `tiny` or any name `@refconv/backbones` knows (e.g. `resnet18`). */
  arch: string;
  /** Channels of the four stages of the `tiny` backbone (C2..C5). Default [16, 32, 64, 128]. */
  tinyWidths?: [number, number, number, number];
  /** Width multiplier passed to `@refconv/backbones` (e.g. 0.25 for a CPU-sized ResNet-18). */
  width?: number;
  /**
   * ImageNet-style weights for a `@refconv/backbones` architecture: a safetensors file in
   * torchvision state-dict naming (e.g. converted `resnet18-f37072fd.pth`); the classifier is skipped.
   */
  weights?: string;
  /** Fixed input `[H, W]` (needed for FLOP counts); default dynamic. */
  inputSize?: [number, number];
}

function convBnRelu(x: tf.SymbolicTensor, filters: number, strides: number, name: string): tf.SymbolicTensor {
  const conv = tf.layers.conv2d({ filters, kernelSize: 3, strides, padding: 'same', useBias: false, kernelInitializer: 'heNormal', name: `${name}_conv` });
  const bn = tf.layers.batchNormalization({ axis: -1, momentum: 0.9, epsilon: 1e-5, name: `${name}_bn` });
  return tf.layers.reLU({ name: `${name}_relu` }).apply(bn.apply(conv.apply(x))) as tf.SymbolicTensor;
}

/**
 * A plain ConvNet: a stride-2 stem, then four stages of (3x3 stride 2, 3x3 stride 1) conv-BN-ReLU;
 * the stage outputs are C2..C5.
 */
export function tinyBackbone(widths: [number, number, number, number] = [16, 32, 64, 128], inputSize?: [number, number]): tf.LayersModel {
  const input = tf.input({ shape: [inputSize?.[0] ?? null, inputSize?.[1] ?? null, 3] as number[], name: 'image' });
  let x = convBnRelu(input, widths[0], 2, 'stem');
  const features: tf.SymbolicTensor[] = [];
  widths.forEach((w, i) => {
    x = convBnRelu(x, w, 2, `stage${i + 1}_a`);
    x = convBnRelu(x, w, 1, `stage${i + 1}_b`);
    features.push(x);
  });
  return tf.model({ inputs: input, outputs: features, name: 'tiny_backbone' });
}

/**
 * Builds a backbone by name. `@refconv/backbones` models are built at a nominal input size;
 * the detector applies them to its own (dynamic-size) input, which works because they are
 * fully convolutional.
 */
export function createBackbone(opts: BackboneOptions): tf.LayersModel {
  if (opts.arch === 'tiny') {
    if (opts.weights) throw new Error(`backbone 'tiny' has no pretrained weights format; --backbone-weights needs a @refconv/backbones architecture`);
    return tinyBackbone(opts.tinyWidths, opts.inputSize);
  }
  const model = backbones.createModel(opts.arch, { features: true, inputSize: opts.inputSize ?? 224, ...(opts.width !== undefined ? { width: opts.width } : {}) });
  if (model.outputs.length !== 4) {
    throw new Error(`backbone '${opts.arch}': expected 4 feature outputs (C2..C5), got ${model.outputs.length}; use an ImageNet-style architecture`);
  }
  if (opts.weights) {
    const r = backbones.loadTorchWeights(model, opts.weights, { skip: (k) => k.startsWith('fc.') || k.startsWith('classifier.') });
    if (r.refocused) throw new Error(`backbone weights ${opts.weights} are a RefConv checkpoint; train the plain detector first, then use --refconv`);
    process.stderr.write(`backbone '${opts.arch}': loaded ${r.loaded.length} tensors from ${opts.weights}\n`);
  }
  return model;
}
