/**
 * Channel redundancy per conv layer of a model on a fixed batch of images (definitions in
 * `redundancy.ts` and the README).
 */
import * as tf from '@tensorflow/tfjs';
import { createProgress } from '@refconv/engine';
import { featureRedundancySums, weightRedundancy } from './redundancy.js';
import { convLayersOf, layerKernel } from './model-layers.js';
import type { ImageBatch } from './data.js';

/** One layer's redundancy. */
export interface LayerRedundancy {
  layer: string;
  /** 1-based position among the model's conv layers (the x axis of the plots). */
  depth: number;
  kernelSize: number;
  channels: number;
  /** Feature space (NaN for a 1-channel layer). */
  kl: number;
  cos: number;
  /** Weight space (NaN with fewer than 2 output kernels). */
  weightCos: number;
}

/** A model's redundancy: per layer and the means over its layers (NaN layers left out). */
export interface ModelRedundancy {
  layers: LayerRedundancy[];
  mean: { kl: number; cos: number; weightCos: number };
}

/** Options of {@link modelRedundancy}. */
export interface RedundancyOptions {
  /** Images per forward pass (default 32). */
  batchSize?: number;
  /** Progress label; `false` for none. */
  label?: string | false;
}

const meanOf = (v: number[]): number => { const f = v.filter(Number.isFinite); return f.length ? f.reduce((a, b) => a + b, 0) / f.length : NaN; };

/**
 * Feature-space (conv outputs before BN/activation, on `images`) and weight-space redundancy of
 * every conv layer of `model`. Tensors are freed.
 */
export function modelRedundancy(model: tf.LayersModel, images: ImageBatch, opts: RedundancyOptions = {}): ModelRedundancy {
  const convs = convLayersOf(model);
  if (convs.length === 0) throw new Error(`model '${model.name}' has no Conv2D / DepthwiseConv2D / RefConv2D layer`);
  const probe = tf.model({ inputs: model.inputs, outputs: convs.map((c) => c.layer.output as tf.SymbolicTensor) });
  const bs = opts.batchSize ?? 32;
  const sums = convs.map(() => ({ kl: 0, cos: 0, n: 0 }));
  const per = images.size * images.size * images.channels;
  const chunks = Math.ceil(images.n / bs);
  const progress = opts.label === false ? undefined : createProgress({ label: opts.label ?? 'redundancy', total: chunks });
  for (let i = 0; i < chunks; i++) {
    const n = Math.min(bs, images.n - i * bs);
    const outs = tf.tidy(() => {
      const x = tf.tensor4d(images.x.subarray(i * bs * per, (i * bs + n) * per), [n, images.size, images.size, images.channels]);
      const o = probe.predict(x);
      return Array.isArray(o) ? o : [o];
    }) as tf.Tensor4D[];
    outs.forEach((t, j) => {
      if (t.shape[3] >= 2) {
        const s = featureRedundancySums(t);
        sums[j]!.kl += s.klSum;
        sums[j]!.cos += s.cosSum;
        sums[j]!.n += s.images;
      }
      t.dispose();
    });
    progress?.tick(1, n);
  }
  progress?.finish({});
  const layers = convs.map((c, j): LayerRedundancy => {
    const k = layerKernel(c);
    const s = sums[j]!;
    return {
      layer: c.name,
      depth: j + 1,
      kernelSize: k.shape[0],
      channels: c.depthwise ? k.shape[2] * k.shape[3] : k.shape[3],
      kl: s.n ? s.kl / s.n : NaN,
      cos: s.n ? s.cos / s.n : NaN,
      weightCos: weightRedundancy(k.data, k.shape, c.depthwise),
    };
  });
  return { layers, mean: { kl: meanOf(layers.map((l) => l.kl)), cos: meanOf(layers.map((l) => l.cos)), weightCos: meanOf(layers.map((l) => l.weightCos)) } };
}
