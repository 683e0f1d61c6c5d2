/** One optimizer step on a tfjs model with an explicit loss, using `tf.variableGrads`. */
import * as tf from '@tensorflow/tfjs';
import type { NamedParam, SGD } from './sgd.js';

/**
 * The trainable weights of a model as {@link NamedParam}s, named by layer-variable
 * `originalName` (the same names {@link modelWeights} writes). Frozen weights
 * (`trainable = false`, e.g. RefConv bases or BN statistics) are not included.
 */
export function trainableParams(model: tf.LayersModel): NamedParam[] {
  return model.trainableWeights.map((w) => ({ name: w.originalName, variable: w.read() as tf.Variable }));
}

/**
 * Computes `loss()` and its gradients with respect to `params`, applies one optimizer step
 * with learning rate `lr`, frees every intermediate tensor, and returns the loss value.
 *
 * `loss` runs inside the gradient tape: call the model with `{training: true}` there, and
 * compute any per-batch metric from the logits in the same closure (e.g. with
 * {@link topkCorrect}, which returns a plain number).
 */
export function sgdStep(optimizer: SGD, params: NamedParam[], lr: number, loss: () => tf.Scalar): number {
  if (params.length === 0) throw new Error('sgdStep: no trainable parameters (is everything frozen?)');
  const { value, grads } = tf.variableGrads(loss, params.map((p) => p.variable));
  try {
    const v = value.dataSync()[0]!;
    if (!Number.isFinite(v)) throw new Error(`sgdStep: loss is ${v}; stopping before the weights are corrupted (lower the learning rate?)`);
    optimizer.step(grads, lr);
    return v;
  } finally {
    value.dispose();
    for (const g of Object.values(grads)) g.dispose();
  }
}
