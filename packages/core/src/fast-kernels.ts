/**
 * The switch for the native kernel routes of the `tensorflow` backend; the routes themselves live
 * in `kernels/`, one file per kernel family:
 *
 * - `kernels/batch-norm.ts`: training-mode BatchNormalization as one fused native op forward and
 *   one backward (`FusedBatchNormV3` / `FusedBatchNormGradV3`);
 * - `kernels/activations.ts`: ReLU / ReLU6 gradients as TF's ReluGrad / Relu6Grad, and ReLU6
 *   layers as the native Relu6 op;
 * - `kernels/conv-layer.ts`: Conv2D layers as plain convs while gradients are recorded (tfjs'
 *   fused conv always computes the input gradient, also of the stem);
 * - `kernels/conv-gradients.ts`: the conv input- and filter-gradient kernels, dispatched per call
 *   to a correctness route, a speed route or TF's own kernel;
 * - `kernels/conv-forward.ts` + `kernels/pointwise-matmul.ts`: 1x1 convs as MatMul where this
 *   host's oneDNN 1x1 conv failed;
 * - `kernels/refconv-ops.ts`: RefConv's own TF kernels (one-pass SGD update, max-pool gradient,
 *   per-kernel transforms, training-mode batch norm),
 *   each used where the self-check verified it and timed it faster on this host.
 *
 * Two kinds of route. *Speed routes* ({@link enableFastKernels}, on by default on the native
 * backend; `REFCONV_FAST_KERNELS=0` turns them off): the first four bullets, each tested against
 * tfjs' own ops. *Correctness routes* ({@link applyKernelPlan}, from the kernel self-check of
 * kernel-check.ts, which initBackend runs once per host): kernel classes whose oneDNN kernel gave
 * wrong numbers or crashed on this CPU go to a verified alternative; they stay in force when the
 * speed routes are off. The one speed route that depends on a kernel's speed on one CPU (Eigen
 * filter gradients, measured on AVX2) is taken only where the self-check verified that kernel.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelClass, KernelRoute } from './kernel-check.js';
import { patchActivations, restoreActivations } from './kernels/activations.js';
import { patchBatchNormalization, restoreBatchNormalization } from './kernels/batch-norm.js';
import { overrideForwardPointwise, restoreForwardKernels } from './kernels/conv-forward.js';
import { installConvGradientOverrides, restoreConvGradients } from './kernels/conv-gradients.js';
import { patchConvLayer, restoreConvLayer } from './kernels/conv-layer.js';
import { installMaxPoolGradRoute, restoreMaxPoolGradRoute } from './kernels/refconv-ops.js';
import { state } from './kernels/state.js';

export { fusedBatchNormTraining } from './kernels/batch-norm.js';
export { conv2dFilterGradientExplicit, conv2dInputGradient, conv2dInputGradientExplicit } from './kernels/conv-gradients.js';
export { oneDnnRequested } from './kernels/native.js';
export { pointwiseConv, pointwiseFilterGradient, pointwiseInputGradient } from './kernels/pointwise-matmul.js';
export {
  loadRefconvOps, nativePerKernelRefocus, refconvBatchNormTraining, refconvBatchNormTrainingGrad, nativeSgdUpdate, refconvMaxPoolGrad, refconvRefocusPerKernel, refconvRefocusPerKernelGrad, refconvSgdUpdate, type SgdUpdateOptions,
} from './kernels/refconv-ops.js';

/**
 * Switches on the speed routes. Only has an effect on the `tensorflow` backend; idempotent.
 * Returns whether they are active.
 */
export function enableFastKernels(): boolean {
  if (state.fastKernels) return true;
  if (tf.getBackend() !== 'tensorflow' || process.env.REFCONV_FAST_KERNELS === '0') return false;
  patchActivations();
  patchBatchNormalization();
  state.fastKernels = true;
  installConvGradientOverrides();
  patchConvLayer();
  if (state.refconvOps.maxPoolGrad) installMaxPoolGradRoute();
  return true;
}

/** Restores tfjs' own gradients and layers (used by tests to compare); the correctness routes stay. */
export function disableFastKernels(): void {
  if (!state.fastKernels) return;
  restoreActivations();
  if (!state.batchNormInferenceAffine) restoreBatchNormalization();
  state.fastKernels = false;
  // The correctness routes stay: they are what makes this host's kernels right.
  if (Object.keys(state.routes).length === 0) restoreConvGradients();
  restoreConvLayer();
  if (state.routes['maxPool.inputGrad'] !== 'refconv') restoreMaxPoolGradRoute();
}

/** Whether {@link enableFastKernels} is active. */
export function fastKernelsEnabled(): boolean {
  return state.fastKernels;
}

/**
 * Applies the kernel self-check's verdict on the `tensorflow` backend: routes the kernel classes
 * whose oneDNN kernel failed to their verified alternative, and allows the Eigen filter-gradient
 * speed route only where it was verified. Call after the backend is set; idempotent.
 */
export function applyKernelPlan(plan: {
  routes: Partial<Record<KernelClass, KernelRoute>>; eigenFilterGradient: boolean; eigenFilterGradientCorrect?: boolean;
  eigenFilterGradientMaps?: { small: boolean; large: boolean };
  batchNormInference?: 'native' | 'affine'; refconvOps?: { sgdUpdate: boolean; maxPoolGrad: boolean; perKernelRefocus?: boolean; batchNormTraining?: boolean };
}): void {
  state.routes = { ...plan.routes };
  state.refconvOps = {
    sgdUpdate: plan.refconvOps?.sgdUpdate ?? false, maxPoolGrad: plan.refconvOps?.maxPoolGrad ?? false, perKernelRefocus: plan.refconvOps?.perKernelRefocus ?? false,
    batchNormTraining: plan.refconvOps?.batchNormTraining ?? false,
  };
  state.eigenFilterGradientMaps = plan.eigenFilterGradientMaps ?? { small: plan.eigenFilterGradient, large: plan.eigenFilterGradient };
  state.eigenFilterGradientCorrect = plan.eigenFilterGradientCorrect ?? plan.eigenFilterGradient;
  state.batchNormInferenceAffine = plan.batchNormInference === 'affine' || plan.routes['batchNorm.inference'] === 'affine';
  if (tf.getBackend() !== 'tensorflow') return;
  // The scale + shift is applied by the patched BatchNormalization layer, also when the speed routes are off.
  if (state.batchNormInferenceAffine) patchBatchNormalization();
  if (Object.keys(state.routes).length > 0) installConvGradientOverrides();
  else if (!state.fastKernels) restoreConvGradients();
  if (state.routes['conv1x1.forward'] === 'matmul') overrideForwardPointwise();
  else restoreForwardKernels();
  // a speed route (with the fast kernels) or this host's correctness route
  if (state.routes['maxPool.inputGrad'] === 'refconv' || (state.fastKernels && state.refconvOps.maxPoolGrad)) installMaxPoolGradRoute();
  else restoreMaxPoolGradRoute();
}

/** The correctness routes in force (see {@link applyKernelPlan}). */
export function activeKernelRoutes(): Partial<Record<KernelClass, KernelRoute>> {
  return { ...state.routes };
}
