/**
 * The forward conv kernels (`Conv2D`, and `FusedConv2D`, which tfjs-node runs as Conv2D + bias +
 * activation) replaced so that 1x1 convs run as MatMul: the kernel self-check's route for hosts
 * whose oneDNN 1x1 conv is wrong or crashes (SIGFPE in its blocking heuristic was seen).
 */
import * as tf from '@tensorflow/tfjs';
import { replaceKernel, restoreKernels, type Pad } from './native.js';
import { isPointwise, pointwiseConv } from './pointwise-matmul.js';
import { state } from './state.js';

const originalForwardKernels = new Map<string, tf.KernelConfig>();

/** The attributes tfjs passes to Conv2D / FusedConv2D. */
interface ConvForwardAttrs {
  strides: number | [number, number];
  pad: Pad;
  dataFormat: string;
  dilations: number | [number, number];
  dimRoundingMode?: string;
  activation?: string;
  leakyreluAlpha?: number;
}

/** Replaces Conv2D and FusedConv2D so that 1x1 convs (NHWC, no dilation) run as MatMul. */
export function overrideForwardPointwise(): void {
  for (const kernelName of ['Conv2D', 'FusedConv2D']) {
    replaceKernel(kernelName, originalForwardKernels, (original) => (args) => {
      const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, tf.Tensor4D>;
      const a = args.attrs as unknown as ConvForwardAttrs;
      const dilations = typeof a.dilations === 'number' ? [a.dilations, a.dilations] : a.dilations ?? [1, 1];
      const applies = state.routes['conv1x1.forward'] === 'matmul' && a.dataFormat === 'NHWC' && a.dimRoundingMode == null
        && typeof a.pad === 'string' && dilations.every((d) => d === 1) && isPointwise(filter!.shape);
      if (!applies) return original.kernelFunc(args);
      const strides: [number, number] = typeof a.strides === 'number' ? [a.strides, a.strides] : a.strides;
      const y = pointwiseConv(x!, filter!, strides);
      if (kernelName === 'Conv2D') return y;
      const biased = bias ? tf.add(y, bias) : y;
      if (biased !== y) y.dispose();
      const be = args.backend as unknown as { applyActivation(x: tf.Tensor, act?: string, prelu?: tf.Tensor, alpha?: number): tf.Tensor };
      const out = be.applyActivation(biased, a.activation, preluActivationWeights, a.leakyreluAlpha);
      if (out !== biased) biased.dispose();
      return out;
    });
  }
}

/** Puts TF's own Conv2D / FusedConv2D kernels back. */
export function restoreForwardKernels(): void {
  restoreKernels(originalForwardKernels);
}
