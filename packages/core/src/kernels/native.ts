/**
 * The pieces of tfjs-node's native backend that the kernel routes call directly (op attributes,
 * padding arithmetic), and the oneDNN switch as TensorFlow reads it.
 */
import * as tf from '@tensorflow/tfjs';

/** The parts of tfjs-node's backend we call (not in tfjs' public typings). */
export interface NativeBackend {
  binding: { TF_ATTR_FLOAT: number; TF_ATTR_STRING: number; TF_ATTR_BOOL: number; TF_ATTR_TYPE: number; TF_ATTR_INT: number; TF_FLOAT: number };
  executeSingleOutput(name: string, attrs: unknown[], inputs: tf.Tensor[]): tf.Tensor;
  executeMultipleOutputs(name: string, attrs: unknown[], inputs: tf.Tensor[], numOutputs: number): tf.Tensor[];
}

export function native(): NativeBackend {
  return tf.backend() as unknown as NativeBackend;
}

export function floatTypeAttr(b: NativeBackend) {
  return { name: 'T', type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT };
}

export type Pad = 'same' | 'valid' | number | number[][];

/** [before, after] padding of the forward conv along one spatial axis (TF 'SAME' semantics). */
export function forwardPadding(len: number, k: number, stride: number, pad: Pad, axis: 1 | 2): [number, number] {
  if (pad === 'valid') return [0, 0];
  if (typeof pad === 'number') return [pad, pad];
  if (Array.isArray(pad)) return [pad[axis][0], pad[axis][1]];
  const out = Math.ceil(len / stride);
  const total = Math.max((out - 1) * stride + k - len, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** Whether TF's oneDNN CPU kernels are requested (TF reads the variable at its first op; it accepts 1/true/yes/on). */
export function oneDnnRequested(): boolean {
  return ['1', 'true', 'yes', 'on'].includes((process.env.TF_ENABLE_ONEDNN_OPTS ?? '').toLowerCase());
}

/**
 * Replaces a kernel of the tensorflow backend with `wrap(original)`, remembering the original in
 * `originals` (once: a kernel already replaced is left as it is). Returns whether it replaced it.
 */
export function replaceKernel(kernelName: string, originals: Map<string, tf.KernelConfig>, wrap: (original: tf.KernelConfig) => tf.KernelFunc): boolean {
  if (originals.has(kernelName)) return false;
  const original = tf.getKernel(kernelName, 'tensorflow');
  if (!original) return false;
  originals.set(kernelName, original);
  tf.unregisterKernel(kernelName, 'tensorflow');
  tf.registerKernel({ ...original, kernelFunc: wrap(original) });
  return true;
}

/** Puts back every kernel that {@link replaceKernel} replaced into `originals`. */
export function restoreKernels(originals: Map<string, tf.KernelConfig>): void {
  for (const [name, original] of originals) {
    tf.unregisterKernel(name, 'tensorflow');
    tf.registerKernel(original);
  }
  originals.clear();
}
