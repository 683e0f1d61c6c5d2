/**
 * Faster training on the native TensorFlow backend.
 *
 * tfjs computes many gradients as chains of small ops (ReLU as Step + Multiply; training-mode
 * batch norm as moments + a dozen elementwise ops forward and backward), and each op is a separate
 * native dispatch with its own temporaries. TensorFlow has fused kernels for exactly these:
 * `FusedBatchNormV3` / `FusedBatchNormGradV3`, `ReluGrad`, `Relu6Grad`. When the backend is
 * `tensorflow`, {@link enableFastKernels} routes
 * - the gradients of Relu and Relu6 to the native grad kernels, and
 * - tf.layers BatchNormalization in training mode (4-D, channels-last) to one fused native forward
 *   op with a custom gradient that is one fused native backward op,
 * - tf.layers ReLU with maxValue 6 (relu then clipByValue, whose gradient is five ops) to the
 *   native Relu6 op,
 * keeping tfjs' semantics (biased batch variance for normalisation, moving averages updated with
 * the layer's momentum). Everything else is untouched. `REFCONV_FAST_KERNELS=0` disables it.
 */
import * as tf from '@tensorflow/tfjs';

/** The parts of tfjs-node's backend we call (not in tfjs' public typings). */
interface NativeBackend {
  binding: { TF_ATTR_FLOAT: number; TF_ATTR_STRING: number; TF_ATTR_BOOL: number; TF_ATTR_TYPE: number; TF_FLOAT: number };
  executeSingleOutput(name: string, attrs: unknown[], inputs: tf.Tensor[]): tf.Tensor;
  executeMultipleOutputs(name: string, attrs: unknown[], inputs: tf.Tensor[], numOutputs: number): tf.Tensor[];
}

let enabled = false;
let originalBnCall: ((inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor) | null = null;
let originalReluGrad: tf.GradConfig | undefined;
let originalRelu6Grad: tf.GradConfig | undefined;
let originalReluLayerCall: ((inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor) | null = null;

function reluLayerProto(): { call: typeof originalReluLayerCall } {
  return Object.getPrototypeOf(tf.layers.reLU({})) as { call: typeof originalReluLayerCall };
}

function patchReluLayer(): void {
  if (originalReluLayerCall) return;
  const proto = reluLayerProto();
  originalReluLayerCall = proto.call;
  const original = originalReluLayerCall as NonNullable<typeof originalReluLayerCall>;
  proto.call = function patchedReluCall(this: { maxValue?: number | null }, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) {
    if (this.maxValue !== 6) return original.call(this as never, inputs, kwargs);
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor;
    return tf.relu6(x);
  };
}

function native(): NativeBackend {
  return tf.backend() as unknown as NativeBackend;
}

function floatTypeAttr(b: NativeBackend) {
  return { name: 'T', type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT };
}

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

function bnAttrs(b: NativeBackend, epsilon: number, training: boolean) {
  return [
    floatTypeAttr(b),
    { name: 'U', type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT },
    { name: 'epsilon', type: b.binding.TF_ATTR_FLOAT, value: epsilon },
    { name: 'exponential_avg_factor', type: b.binding.TF_ATTR_FLOAT, value: 1 },
    { name: 'data_format', type: b.binding.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'is_training', type: b.binding.TF_ATTR_BOOL, value: training },
  ];
}

/**
 * Training-mode batch norm of a 4-D NHWC tensor as one native op, with a one-op native gradient.
 * `onStats(mean, biasedVariance)` receives the batch statistics (for the moving averages).
 */
export function fusedBatchNormTraining(
  x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number,
  onStats?: (mean: tf.Tensor1D, variance: tf.Tensor1D) => void,
): tf.Tensor4D {
  const f = tf.customGrad(((xx: tf.Tensor, g: tf.Tensor, bb: tf.Tensor, save: tf.GradSaveFunc) => {
    const b = native();
    const empty = tf.tensor1d([], 'float32');
    const [y, batchMean, batchVar, r1, r2, r3] = b.executeMultipleOutputs(
      'FusedBatchNormV3', bnAttrs(b, epsilon, true), [xx, g, bb, empty, empty], 6,
    );
    empty.dispose();
    if (onStats) {
      // TF reports the Bessel-corrected variance; tfjs' BN moving average uses the biased one.
      const n = xx.size / (xx.shape[3] as number);
      const biased = tf.mul(batchVar, n > 1 ? (n - 1) / n : 1) as tf.Tensor1D;
      onStats(batchMean as tf.Tensor1D, biased);
      biased.dispose();
    }
    batchMean.dispose();
    batchVar.dispose();
    save([xx, g, r1, r2, r3]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sg, s1, s2, s3] = saved;
        const nb = native();
        const [dx, dg, db, e1, e2] = nb.executeMultipleOutputs(
          'FusedBatchNormGradV3', bnAttrs(nb, epsilon, true).filter((a) => a.name !== 'exponential_avg_factor'), [dy, sx, sg, s1, s2, s3], 5,
        );
        e1.dispose();
        e2.dispose();
        return [dx, dg, db];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x, gamma, beta) as tf.Tensor4D;
}

interface BatchNormLike {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: tf.LayerVariable;
  beta: tf.LayerVariable;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
}

function patchBatchNormalization(): void {
  const proto = Object.getPrototypeOf(tf.layers.batchNormalization({})) as { call: typeof originalBnCall };
  if (originalBnCall) return;
  originalBnCall = proto.call;
  const original = originalBnCall as NonNullable<typeof originalBnCall>;
  proto.call = function patchedCall(this: BatchNormLike, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor;
    const fast = kwargs?.training === true && x.rank === 4 && (this.axis === -1 || this.axis === 3) && this.center && this.scale && x.dtype === 'float32';
    if (!fast) return original.call(this as never, inputs, kwargs);
    return tf.tidy(() => {
      const updateMovingAverages = (mean: tf.Tensor1D, variance: tf.Tensor1D) => {
        tf.tidy(() => {
          const decay = 1 - this.momentum;
          for (const [v, value] of [[this.movingMean, mean], [this.movingVariance, variance]] as const) {
            const orig = v.read();
            v.write(tf.sub(orig, tf.mul(tf.sub(orig, value), decay)));
          }
        });
      };
      return fusedBatchNormTraining(x as tf.Tensor4D, this.gamma.read() as tf.Tensor1D, this.beta.read() as tf.Tensor1D, this.epsilon, updateMovingAverages);
    });
  };
}

/**
 * Switches on the fused native kernels described in the module comment. Only has an effect on
 * the `tensorflow` backend; idempotent. Returns whether the fast path is active.
 */
export function enableFastKernels(): boolean {
  if (enabled) return true;
  if (tf.getBackend() !== 'tensorflow' || process.env.REFCONV_FAST_KERNELS === '0') return false;
  originalReluGrad = tf.getGradient('Relu');
  originalRelu6Grad = tf.getGradient('Relu6');
  tf.registerGradient(nativeActivationGrad('ReluGrad', 'Relu'));
  tf.registerGradient(nativeActivationGrad('Relu6Grad', 'Relu6'));
  patchBatchNormalization();
  patchReluLayer();
  enabled = true;
  return true;
}

/** Restores tfjs' own gradients and batch-norm implementation (used by tests to compare). */
export function disableFastKernels(): void {
  if (!enabled) return;
  if (originalReluGrad) tf.registerGradient(originalReluGrad);
  if (originalRelu6Grad) tf.registerGradient(originalRelu6Grad);
  if (originalBnCall) {
    const proto = Object.getPrototypeOf(tf.layers.batchNormalization({})) as { call: typeof originalBnCall };
    proto.call = originalBnCall;
    originalBnCall = null;
  }
  if (originalReluLayerCall) {
    reluLayerProto().call = originalReluLayerCall;
    originalReluLayerCall = null;
  }
  enabled = false;
}

/** Whether {@link enableFastKernels} is active. */
export function fastKernelsEnabled(): boolean {
  return enabled;
}
