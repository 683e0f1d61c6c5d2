/**
 * Weight-space channel redundancy from a checkpoint's weights alone (no graph, no data), so it
 * runs on every checkpoint the classify, detect and segment pipelines write: the same weight |cos|
 * as {@link modelRedundancy}'s, per conv kernel in layer-name order (natural sort: `layer2` before
 * `layer10`). The weights alone do not give the network's order, and the file order differs
 * between a plain and a RefConv checkpoint of one network; the names do not, so models line up.
 */
import { readConvKernels, type ConvKernel } from './kernels.js';
import { weightRedundancy } from './redundancy.js';

/** Weight |cos| of one conv of a checkpoint. */
export interface KernelWeightRedundancy {
  layer: string;
  kind: ConvKernel['kind'];
  /** 1-based position among the checkpoint's conv kernels in layer-name order (natural sort). */
  depth: number;
  kernelSize: number;
  /** Output kernels compared: Cout, or C * mult for a depthwise kernel. */
  channels: number;
  depthwise: boolean;
  /** Mean pairwise |cosine| of the output kernels; NaN with fewer than 2. */
  weightCos: number;
}

/** Per-kernel results and their mean over the kernels with a finite value. */
export interface CheckpointWeightRedundancy {
  layers: KernelWeightRedundancy[];
  mean: number;
}

/**
 * Whether a kernel read from weights is a depthwise kernel: `depthwise_kernel` weights are; a
 * RefConv2D layer does not record what it wraps, so a RefConv basis `[K, K, C, 1]` with C > 1 is
 * taken as depthwise (read as a regular conv it would have a single output kernel, i.e. no pairs).
 */
export function isDepthwiseKernel(k: ConvKernel): boolean {
  return k.kind === 'depthwise' || (k.kind === 'refconv' && k.shape[3] === 1 && k.shape[2] > 1);
}

/**
 * Weight |cos| of every conv kernel (RefConv layers: W_t), 1x1 included, in layer-name order, and
 * the mean.
 *
 * @param source a `.safetensors` path or the kernels {@link readConvKernels} returned.
 */
export function checkpointWeightRedundancy(source: string | ConvKernel[]): CheckpointWeightRedundancy {
  const read = typeof source === 'string' ? readConvKernels(source) : source;
  const kernels = [...read].sort((a, b) => a.layer.localeCompare(b.layer, 'en', { numeric: true }));
  if (kernels.length === 0) throw new Error(`${typeof source === 'string' ? source : '<kernels>'}: no conv kernel found`);
  const layers = kernels.map((k, i): KernelWeightRedundancy => {
    const depthwise = isDepthwiseKernel(k);
    return {
      layer: k.layer,
      kind: k.kind,
      depth: i + 1,
      kernelSize: k.shape[0],
      channels: depthwise ? k.shape[2] * k.shape[3] : k.shape[3],
      depthwise,
      weightCos: weightRedundancy(k.kernel, k.shape, depthwise),
    };
  });
  const f = layers.map((l) => l.weightCos).filter(Number.isFinite);
  return { layers, mean: f.length ? f.reduce((a, b) => a + b, 0) / f.length : NaN };
}
