/**
 * Throughput measurements of tfjs models: SGD training steps and inference, in images/s.
 */
import * as tf from '@tensorflow/tfjs';

/** A reusable SGD-with-momentum training step on fixed data. */
export interface TrainStep {
  /** Runs one forward + backward + update; returns nothing and keeps no tensors. */
  run(): void;
  /** Frees the optimizer state and data. */
  dispose(): void;
}

/** Builds a training step (softmax cross-entropy, momentum SGD) for `model` on a random batch. */
export function makeTrainStep(model: tf.LayersModel, batch: number, seed = 0): TrainStep {
  const shape = model.inputs[0].shape.slice(1) as number[];
  const classes = model.outputs[0].shape[1] as number;
  const x = tf.randomNormal([batch, ...shape], 0, 1, 'float32', seed);
  const y = tf.oneHot(tf.randomUniform([batch], 0, classes, 'int32', seed + 1) as tf.Tensor1D, classes);
  const optimizer = tf.train.momentum(0.01, 0.9);
  const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  return {
    run() {
      tf.tidy(() => {
        const { grads } = tf.variableGrads(
          () => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
          vars,
        );
        optimizer.applyGradients(grads as tf.NamedTensorMap as never);
      });
    },
    dispose() {
      tf.dispose([x, y]);
      optimizer.dispose();
    },
  };
}

/** Images/s of training: one warm-up step, then `steps` timed steps. */
export function trainThroughput(model: tf.LayersModel, batch: number, steps: number): number {
  const step = makeTrainStep(model, batch);
  try {
    step.run();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) step.run();
    return (batch * steps) / ((performance.now() - t0) / 1000);
  } finally {
    step.dispose();
  }
}

/** Images/s of inference (`predict`, reading the result back), after one warm-up batch. */
export function inferThroughput(model: tf.LayersModel, batch: number, steps: number): number {
  const shape = model.inputs[0].shape.slice(1) as number[];
  const x = tf.randomNormal([batch, ...shape]);
  try {
    const once = () => tf.tidy(() => { (model.predict(x) as tf.Tensor).dataSync(); });
    once();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) once();
    return (batch * steps) / ((performance.now() - t0) / 1000);
  } finally {
    x.dispose();
  }
}
