/**
 * RefConv's own TensorFlow CPU kernels (`native/refconv_ops.cc`, built by the install script into
 * `native/build/refconv_ops.node`), registered into the TensorFlow library that tfjs-node runs and
 * called through its eager `executeOp` like any TF op:
 *
 * - `RefconvSgdUpdate`: one pass of torch.optim.SGD's update (param, momentum buffer, gradient in;
 *   param and buffer out) instead of 4-6 tfjs elementwise ops, each a full pass with its own
 *   allocation; bit-identical to the tfjs ops (`@refconv/engine`'s SGD);
 * - `RefconvMaxPoolGrad`: the NHWC max-pool gradient with TF's tie rule, vectorised over channels
 *   (TF's CPU MaxPoolGrad takes ~4x PyTorch's time for ResNet's stem pool);
 * - `RefconvRefocusPerKernel` / `RefconvRefocusPerKernelGrad`: RefConv's per-kernel transform (a
 *   depthwise conv over the K x K basis image of Cin * Cout channels) and its transform gradient,
 *   vectorised over the channels (TF's depthwise kernels, built for large maps and few channels:
 *   35 ms against 21 ms per ResNet-18 step on the AVX-512 EPYC, `nx run bench:transforms`);
 * - `RefconvBatchNormTraining` / `RefconvBatchNormTrainingGrad`: training-mode batch norm and its
 *   gradient in two passes each over the activations (TF's FusedBatchNormV3 forward took 1.3-4x
 *   as long on an AVX2 EPYC, and was the largest single kernel of a MobileNetV2 step there).
 *
 * All are speed routes: the kernel self-check verifies each against TF's own op on this host and
 * times it, and the route is taken only where it passed and is faster (`state.refconvOps`).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { native, replaceKernel, restoreKernels } from './native.js';
import { state } from './state.js';

/** Where the install script puts the compiled kernels (src/kernels and dist/kernels are both two levels down). */
export const REFCONV_OPS_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'build', 'refconv_ops.node');

let loaded: { ok: true } | { ok: false; reason: string } | undefined;

/**
 * Loads and registers the kernels into the running TensorFlow library (once). They need the
 * native CPU backend; the reason is returned where they cannot be used.
 */
export function loadRefconvOps(): { ok: true } | { ok: false; reason: string } {
  if (loaded) return loaded;
  if (tf.getBackend() !== 'tensorflow') return { ok: false, reason: `backend '${tf.getBackend()}' is not the native TensorFlow one` };
  if (!fs.existsSync(REFCONV_OPS_PATH)) {
    loaded = { ok: false, reason: `${REFCONV_OPS_PATH} is not built (run \`npm rebuild @refconv/core\`)` };
    return loaded;
  }
  try {
    const mod = createRequire(import.meta.url)(REFCONV_OPS_PATH) as { register(): string[] };
    mod.register();
    loaded = { ok: true };
  } catch (e) {
    loaded = { ok: false, reason: `${REFCONV_OPS_PATH}: ${(e as Error).message.split('\n')[0]}` };
  }
  return loaded;
}

/** torch.optim.SGD's hyper-parameters for {@link refconvSgdUpdate}. */
export interface SgdUpdateOptions {
  momentum: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/**
 * One SGD step of a parameter that has a momentum buffer, as one native pass; returns the new
 * parameter and buffer (new tensors; the inputs are not changed). Same float32 results as
 * `d = g + p * wd; b' = b * m + d * (1 - dampening); p' = p - (nesterov ? d + b' * m : b') * lr`
 * computed op by op. Requires {@link loadRefconvOps}.
 */
export function refconvSgdUpdate(param: tf.Tensor, buf: tf.Tensor, grad: tf.Tensor, lr: number, o: SgdUpdateOptions): [tf.Tensor, tf.Tensor] {
  const b = native();
  const float = (name: string, value: number) => ({ name, type: b.binding.TF_ATTR_FLOAT, value });
  const attrs = [
    float('momentum', o.momentum), float('dampening', o.dampening ?? 0), float('weight_decay', o.weightDecay ?? 0),
    { name: 'nesterov', type: b.binding.TF_ATTR_BOOL, value: o.nesterov ?? false },
  ];
  // lr is an input, not an attribute: a schedule changes it every step, and TF's eager runtime
  // caches one kernel instance per distinct attribute set.
  const lrT = tf.scalar(lr);
  try {
    const [p, nb] = b.executeMultipleOutputs('RefconvSgdUpdate', attrs, [param, buf, grad, lrT], 2);
    return [p, nb];
  } finally {
    lrT.dispose();
  }
}

/**
 * The gradient of an NHWC float32 max pool with windows `ksize` = [kh, kw], `strides` and
 * `pads` = [top, left] (TF's MaxPoolGrad semantics, its tie rule included). Requires
 * {@link loadRefconvOps}.
 */
export function refconvMaxPoolGrad(input: tf.Tensor, dy: tf.Tensor, ksize: [number, number], strides: [number, number], pads: [number, number]): tf.Tensor {
  const b = native();
  const ints = (name: string, value: number[]) => ({ name, type: b.binding.TF_ATTR_INT, value });
  return b.executeSingleOutput('RefconvMaxPoolGrad', [ints('ksize', ksize), ints('strides', strides), ints('pads', pads)], [input, dy]);
}

/**
 * The SGD update route for `@refconv/engine`'s optimizer: the native one-pass update where the
 * self-check chose it on this host, else null (the optimizer then uses tfjs ops).
 */
export function nativeSgdUpdate(): typeof refconvSgdUpdate | null {
  const chosen = state.routes['sgd.update'] === 'refconv' || (state.fastKernels && state.refconvOps.sgdUpdate);
  return chosen && tf.getBackend() === 'tensorflow' && loadRefconvOps().ok ? refconvSgdUpdate : null;
}

/**
 * RefConv's per-kernel transform of a basis image: `tf.depthwiseConv2d(image, transform, 1, 'same')`
 * for image [1, K, K, N] and transform [M, M, N, 1] (odd M <= K), as one native pass. Requires
 * {@link loadRefconvOps}.
 */
export function refconvRefocusPerKernel(image: tf.Tensor4D, transform: tf.Tensor4D): tf.Tensor4D {
  return native().executeSingleOutput('RefconvRefocusPerKernel', [], [image, transform]) as tf.Tensor4D;
}

/**
 * The gradient of {@link refconvRefocusPerKernel} with respect to the transform: [M, M, N, 1] from
 * the image [1, K, K, N] and the output gradient `dy` (same shape as the image). Requires
 * {@link loadRefconvOps}.
 */
export function refconvRefocusPerKernelGrad(image: tf.Tensor4D, dy: tf.Tensor4D, mapK: number): tf.Tensor4D {
  const b = native();
  return b.executeSingleOutput('RefconvRefocusPerKernelGrad', [{ name: 'map_k', type: b.binding.TF_ATTR_INT, value: [mapK] }], [image, dy]) as tf.Tensor4D;
}

/** An activation fused into {@link refconvBatchNormTraining}: applied to its output, its mask to the gradient. */
export type FusedActivation = 'relu' | 'relu6';

const ACTIVATION_CODE: Record<FusedActivation | 'none', number> = { none: 0, relu: 1, relu6: 2 };

function batchNormAttrs(epsilon: number, activation: FusedActivation | undefined) {
  const b = native();
  return [
    { name: 'epsilon', type: b.binding.TF_ATTR_FLOAT, value: epsilon },
    { name: 'activation', type: b.binding.TF_ATTR_INT, value: ACTIVATION_CODE[activation ?? 'none'] },
  ];
}

/**
 * Training-mode batch norm of `x` over all axes but the last (C channels): returns
 * `[y, mean, variance, invStd]` with the batch mean, the biased batch variance and
 * `invStd = 1 / sqrt(variance + epsilon)`, and `y = act((x - mean) * (invStd * scale) + offset)`
 * (`act`: the identity, or the fused `activation`). Requires {@link loadRefconvOps}.
 */
export function refconvBatchNormTraining(
  x: tf.Tensor, scale: tf.Tensor1D, offset: tf.Tensor1D, epsilon: number, activation?: FusedActivation,
): [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D] {
  const [y, mean, variance, invStd] = native().executeMultipleOutputs('RefconvBatchNormTraining', batchNormAttrs(epsilon, activation), [x, scale, offset], 4);
  return [y!, mean as tf.Tensor1D, variance as tf.Tensor1D, invStd as tf.Tensor1D];
}

/**
 * The gradient of {@link refconvBatchNormTraining} (batch statistics as functions of x, the fused
 * activation's mask included): `[dx, dscale, doffset]` from the output gradient `dy`, the
 * forward's inputs and its `mean` and `invStd`. Requires {@link loadRefconvOps}.
 */
export function refconvBatchNormTrainingGrad(
  dy: tf.Tensor, x: tf.Tensor, scale: tf.Tensor1D, offset: tf.Tensor1D, mean: tf.Tensor1D, invStd: tf.Tensor1D, epsilon: number, activation?: FusedActivation,
): [tf.Tensor, tf.Tensor1D, tf.Tensor1D] {
  const [dx, dscale, doffset] = native().executeMultipleOutputs('RefconvBatchNormTrainingGrad', batchNormAttrs(epsilon, activation), [dy, x, scale, offset, mean, invStd], 3);
  return [dx!, dscale as tf.Tensor1D, doffset as tf.Tensor1D];
}

/** Whether training-mode batch norm runs on RefConv's kernels (the self-check's choice on this host, or its correctness route). */
export function refconvBatchNormChosen(): boolean {
  const chosen = state.routes['batchNorm.training'] === 'refconv' || (state.fastKernels && state.refconvOps.batchNormTraining);
  return chosen && tf.getBackend() === 'tensorflow' && loadRefconvOps().ok;
}

const PER_KERNEL_REFOCUS = 'RefconvRefocusPerKernel';
let perKernelRegistered = false;

/**
 * Registers {@link refconvRefocusPerKernel} as a tfjs kernel of the `tensorflow` backend with its
 * gradient: the transform's by {@link refconvRefocusPerKernelGrad}; the image's (only computed when
 * asked for: RefConv's basis is frozen) as the depthwise conv of `dy` with the transform flipped in
 * both spatial axes, the transpose of a stride-1 'same' correlation with an odd map.
 */
function registerPerKernelRefocus(): void {
  if (perKernelRegistered) return;
  tf.registerKernel({
    kernelName: PER_KERNEL_REFOCUS,
    backendName: 'tensorflow',
    kernelFunc: ({ inputs }) => {
      const { image, transform } = inputs as { image: tf.Tensor4D; transform: tf.Tensor4D };
      return refconvRefocusPerKernel(image, transform) as unknown as tf.TensorInfo;
    },
  });
  tf.registerGradient({
    kernelName: PER_KERNEL_REFOCUS,
    inputsToSave: ['image', 'transform'],
    gradFunc: (dy, saved) => {
      const [image, transform] = saved as [tf.Tensor4D, tf.Tensor4D];
      const g = dy as tf.Tensor4D;
      return {
        image: () => tf.depthwiseConv2d(g, tf.reverse(transform, [0, 1]), 1, 'same'),
        transform: () => refconvRefocusPerKernelGrad(image, g, transform.shape[0]),
      };
    },
  });
  perKernelRegistered = true;
}

/**
 * The per-kernel transform route for `refocusKernel`: a function computing
 * `tf.depthwiseConv2d(image, transform, 1, 'same')` (differentiable) on RefConv's kernels where the
 * self-check chose them on this host, else null (tfjs' depthwise conv is used).
 */
export function nativePerKernelRefocus(): ((image: tf.Tensor4D, transform: tf.Tensor4D) => tf.Tensor4D) | null {
  const chosen = state.routes['refocus.perKernel'] === 'refconv' || (state.fastKernels && state.refconvOps.perKernelRefocus);
  if (!chosen || tf.getBackend() !== 'tensorflow' || !loadRefconvOps().ok) return null;
  registerPerKernelRefocus();
  return (image, transform) => tf.engine().runKernel(PER_KERNEL_REFOCUS, { image, transform }, {}) as tf.Tensor4D;
}

const originals = new Map<string, tf.KernelConfig>();

/**
 * Routes tfjs' `MaxPoolGrad` kernel to {@link refconvMaxPoolGrad} for float32 NHWC pools (what
 * tfjs' max-pool gradient calls); anything else goes to TF's own kernel.
 */
export function installMaxPoolGradRoute(): void {
  if (!loadRefconvOps().ok) return;
  replaceKernel('MaxPoolGrad', originals, (original) => (args) => {
    const { dy, input } = args.inputs as { dy: tf.Tensor4D; input: tf.Tensor4D; output: tf.Tensor4D };
    const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as {
      filterSize: number | [number, number]; strides: number | [number, number]; pad: 'valid' | 'same' | number; dimRoundingMode?: 'floor' | 'round' | 'ceil';
    };
    if (input.dtype !== 'float32' || dy.dtype !== 'float32') return original.kernelFunc(args);
    const info = tf.backend_util.computePool2DInfo(input.shape, filterSize, strides, 1, pad, dimRoundingMode);
    if (info.dataFormat !== 'channelsLast' || info.dilationHeight !== 1 || info.dilationWidth !== 1) return original.kernelFunc(args);
    return refconvMaxPoolGrad(input, dy, [info.filterHeight, info.filterWidth], [info.strideHeight, info.strideWidth], [info.padInfo.top, info.padInfo.left]) as unknown as tf.TensorInfo;
  });
}

/** Puts TF's own MaxPoolGrad back. */
export function restoreMaxPoolGradRoute(): void {
  restoreKernels(originals);
}
