/**
 * ReLU and ReLU6 on native kernels: their gradients as TF's ReluGrad / Relu6Grad (tfjs computes
 * them as Step + Multiply), and tf.layers ReLU with maxValue 6 as the native Relu6 op (tfjs runs
 * relu then clipByValue, whose gradient is five ops); a ReLU layer whose input the
 * BatchNormalization layer before it already activated (batch-norm.ts) passes it through.
 */
import * as tf from '@tensorflow/tfjs';
import { activatedByBatchNorm } from './batch-norm.js';
import { floatTypeAttr, native } from './native.js';

type LayerCall = (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor;
let originalReluGrad: tf.GradConfig | undefined;
let originalRelu6Grad: tf.GradConfig | undefined;
let originalReluLayerCall: LayerCall | null = null;

/** Native ReluGrad / Relu6Grad: dy where the saved input is in the active range, else 0. */
function nativeActivationGrad(op: 'ReluGrad' | 'Relu6Grad', kernelName: string): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: ['x'],
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [x] = saved;
      return { x: () => native().executeSingleOutput(op, [floatTypeAttr(native())], [dy as tf.Tensor, x]) };
    },
  };
}

function reluLayerProto(): { call: LayerCall | null } {
  return Object.getPrototypeOf(tf.layers.reLU({})) as { call: LayerCall | null };
}

function patchReluLayer(): void {
  if (originalReluLayerCall) return;
  const proto = reluLayerProto();
  originalReluLayerCall = proto.call;
  const original = originalReluLayerCall as NonNullable<typeof originalReluLayerCall>;
  proto.call = function patchedReluCall(this: { maxValue?: number | null }, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor;
    // the BatchNormalization layer before this one already applied it (batch-norm.ts, fusableActivation);
    // a clone shares the data (no copy) and passes the gradient through
    const fused = activatedByBatchNorm.get(x);
    if (fused !== undefined && fused === (this.maxValue == null ? 'relu' : this.maxValue === 6 ? 'relu6' : undefined)) return tf.clone(x);
    if (this.maxValue !== 6) return original.call(this as never, inputs, kwargs);
    return tf.relu6(x);
  };
}

/** Registers the native activation gradients and the ReLU6 layer patch. */
export function patchActivations(): void {
  originalReluGrad ??= tf.getGradient('Relu');
  originalRelu6Grad ??= tf.getGradient('Relu6');
  tf.registerGradient(nativeActivationGrad('ReluGrad', 'Relu'));
  tf.registerGradient(nativeActivationGrad('Relu6Grad', 'Relu6'));
  patchReluLayer();
}

/** Restores tfjs' own activation gradients and ReLU layer. */
export function restoreActivations(): void {
  if (originalReluGrad) tf.registerGradient(originalReluGrad);
  if (originalRelu6Grad) tf.registerGradient(originalRelu6Grad);
  if (originalReluLayerCall) {
    reluLayerProto().call = originalReluLayerCall;
    originalReluLayerCall = null;
  }
}
