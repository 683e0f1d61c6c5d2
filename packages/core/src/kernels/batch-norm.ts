/**
 * Training-mode batch norm as one native op (`FusedBatchNormV3`) with a one-op native gradient
 * (`FusedBatchNormGradV3`), in place of tfjs' moments + a dozen elementwise ops forward and
 * backward; tf.layers BatchNormalization (4-D, channels-last, training) is patched to use it,
 * keeping tfjs' semantics (biased batch variance for normalisation, moving averages updated with
 * the layer's momentum).
 */
import * as tf from '@tensorflow/tfjs';
import { floatTypeAttr, native, type NativeBackend } from './native.js';
import { refconvBatchNormChosen, refconvBatchNormTraining, refconvBatchNormTrainingGrad, type FusedActivation } from './refconv-ops.js';
import { state } from './state.js';

type LayerCall = (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor;
let originalBnCall: LayerCall | null = null;

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
 * Tensors that a BatchNormalization layer returned with the ReLU / ReLU6 of the layer after it
 * already applied (see {@link fusableActivation}): that layer's call passes them through.
 */
export const activatedByBatchNorm = new WeakMap<tf.Tensor, FusedActivation>();

/**
 * Training-mode batch norm of a 4-D NHWC tensor as one native op, with a one-op native gradient:
 * RefConv's own kernels where the self-check chose them on this host (`RefconvBatchNormTraining`,
 * two passes over x, optionally with a ReLU / ReLU6 `activation` fused into the op and its
 * gradient), else TF's `FusedBatchNormV3` (no activation: pass none there). `onStats(mean,
 * biasedVariance)` receives the batch statistics (for the moving averages).
 */
export function fusedBatchNormTraining(
  x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number,
  onStats?: (mean: tf.Tensor1D, variance: tf.Tensor1D) => void, activation?: FusedActivation,
): tf.Tensor4D {
  const own = refconvBatchNormChosen();
  if (activation && !own) throw new Error(`fusedBatchNormTraining: a fused ${activation} needs RefConv's batch-norm kernels, which this host's kernel plan does not use`);
  const f = tf.customGrad(((xx: tf.Tensor, g: tf.Tensor, bb: tf.Tensor, save: tf.GradSaveFunc) => {
    if (own) {
      const [y, mean, variance, invStd] = refconvBatchNormTraining(xx, g as tf.Tensor1D, bb as tf.Tensor1D, epsilon, activation);
      onStats?.(mean, variance);
      variance.dispose();
      save([xx, g, bb, mean, invStd]);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [sx, sg, sb, sm, si] = saved as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
          return refconvBatchNormTrainingGrad(dy, sx!, sg!, sb!, sm!, si!, epsilon, activation);
        },
      };
    }
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

/** The parts of a tf.layers graph node that {@link fusableActivation} reads. */
interface GraphNode {
  outboundLayer?: { getClassName(): string; maxValue?: number | null };
  inboundLayers: unknown[];
}

/**
 * The activation that a BatchNormalization layer can take over in training: the ReLU or ReLU6
 * (a tf.layers ReLU layer, maxValue none or 6) that is the only consumer of its only output, in a
 * graph where the layer is used once: what its output feeds is then that activation and nothing
 * else, so returning the activated tensor (which the ReLU layer passes through, see
 * {@link activatedByBatchNorm}) changes no result and saves TF's Relu / Relu6 and their gradients,
 * a full pass over the activations each (MobileNetV2: 35 such pairs, ~10 % of a training step on
 * an AMD EPYC AVX2 host). Not fused: a BN whose output is also read elsewhere, and a BN called
 * outside a graph (no nodes). A sub-model that ends at such a BN layer (its output read as a
 * feature map while training) would see the activated values: call the layer in inference mode
 * or turn the fast kernels off for that.
 */
export function fusableActivation(layer: { inboundNodes?: unknown[]; outboundNodes?: GraphNode[] }): FusedActivation | null {
  const out = layer.outboundNodes;
  if (!out || out.length !== 1 || layer.inboundNodes?.length !== 1) return null;
  const node = out[0]!;
  const next = node.outboundLayer;
  if (!next || next.getClassName() !== 'ReLU' || node.inboundLayers.length !== 1) return null;
  if (next.maxValue == null) return 'relu';
  return next.maxValue === 6 ? 'relu6' : null;
}

interface BatchNormLike {
  inboundNodes?: unknown[];
  outboundNodes?: GraphNode[];
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

/**
 * Inference-mode batch norm as the per-channel scale and shift it is: gamma / sqrt(var + eps) and
 * beta - mean * that, from C-length vectors (negligible), then two elementwise passes over x.
 * The kernel self-check picks this over TF's FusedBatchNorm kernel where it is faster on the host
 * (on one AVX-512 host that kernel took 87 % of a MobileNetV2 inference batch) or where that
 * kernel failed the check.
 */
export function batchNormAffine(x: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor, epsilon: number, gamma?: tf.Tensor, beta?: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [k, shift] = batchNormScaleShift(mean, variance, epsilon, gamma, beta);
    return tf.add(tf.mul(x, k!), shift!);
  });
}

/** Inference-mode batch norm's per-channel scale gamma / sqrt(var + eps) and shift beta - mean * scale. */
export function batchNormScaleShift(mean: tf.Tensor, variance: tf.Tensor, epsilon: number, gamma?: tf.Tensor, beta?: tf.Tensor): [tf.Tensor, tf.Tensor] {
  const inv = tf.rsqrt(tf.add(variance, epsilon));
  const k = gamma ? tf.mul(gamma, inv) : inv;
  return [k, beta ? tf.sub(beta, tf.mul(mean, k)) : tf.neg(tf.mul(mean, k))];
}

export function patchBatchNormalization(): void {
  const proto = Object.getPrototypeOf(tf.layers.batchNormalization({})) as { call: typeof originalBnCall };
  if (originalBnCall) return;
  originalBnCall = proto.call;
  const original = originalBnCall as NonNullable<typeof originalBnCall>;
  proto.call = function patchedCall(this: BatchNormLike, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor;
    const lastAxis = this.axis === -1 || this.axis === x.rank - 1;
    if (kwargs?.training !== true && state.batchNormInferenceAffine && lastAxis && x.dtype === 'float32') {
      return batchNormAffine(x, this.movingMean.read(), this.movingVariance.read(), this.epsilon,
        this.scale ? this.gamma.read() : undefined, this.center ? this.beta.read() : undefined);
    }
    const fast = state.fastKernels && kwargs?.training === true && x.rank === 4 && (this.axis === -1 || this.axis === 3) && this.center && this.scale && x.dtype === 'float32';
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
      const activation = refconvBatchNormChosen() ? fusableActivation(this) ?? undefined : undefined;
      const y = fusedBatchNormTraining(x as tf.Tensor4D, this.gamma.read() as tf.Tensor1D, this.beta.read() as tf.Tensor1D, this.epsilon, updateMovingAverages, activation);
      if (activation) activatedByBatchNorm.set(y, activation);
      return y;
    });
  };
}

/** Restores tfjs' own BatchNormalization call. */
export function restoreBatchNormalization(): void {
  if (!originalBnCall) return;
  const proto = Object.getPrototypeOf(tf.layers.batchNormalization({})) as { call: LayerCall };
  proto.call = originalBnCall;
  originalBnCall = null;
}
