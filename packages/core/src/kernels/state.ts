/**
 * Module state shared by the kernel routes: whether the speed routes are on (fast-kernels.ts
 * switches them), and the kernel self-check's verdict for this host (applyKernelPlan).
 */
import type { KernelClass, KernelRoute } from '../kernel-check.js';

export const state = {
  /** The speed routes (fused BN, native ReLU grads, conv-layer patch, faster conv-gradient kernels). */
  fastKernels: false,
  /**
   * Correctness routes from the kernel self-check (kernel-check.ts): kernel classes whose native
   * oneDNN kernel failed on this host, and the verified route to use instead. Unlike the speed
   * routes they stay in force when the fast kernels are off.
   */
  routes: {} as Partial<Record<KernelClass, KernelRoute>>,
  /**
   * Per output-map bucket (kernel-check.ts `mapBucket`): whether the Eigen (EXPLICIT padding)
   * filter-gradient speed route is used there (verified and faster here).
   */
  eigenFilterGradientMaps: { small: false, large: false },
  /** Whether TF's Eigen filter gradient passed the self-check here (`REFCONV_EIGEN_FILTER_GRADIENT=1` may force it then). */
  eigenFilterGradientCorrect: false,
  /** Inference-mode BatchNormalization as a per-channel scale and shift instead of TF's kernel (the check's choice). */
  batchNormInferenceAffine: false,
  /**
   * RefConv's own TF kernels (kernels/refconv-ops.ts) in use: each where the self-check verified
   * it against TF's op and timed it faster on this host.
   */
  refconvOps: { sgdUpdate: false, maxPoolGrad: false, perKernelRefocus: false, batchNormTraining: false },
};
