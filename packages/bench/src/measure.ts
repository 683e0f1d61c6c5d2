/**
 * Throughput measurements of tfjs models: SGD training steps and inference, in images/s.
 */
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { SGD } from '@refconv/engine';

/** A reusable SGD-with-momentum training step on fixed data. */
export interface TrainStep {
  /** Runs one forward + backward + update; returns nothing and keeps no tensors. */
  run(): void;
  /**
   * The same step with its two phases timed apart (ms): forward + backward (gradients read back
   * to force completion) and the optimizer update. Only for training steps.
   */
  runPhases?(): { gradientsMs: number; updateMs: number; weights: number };
  /** Frees the optimizer state and data. */
  dispose(): void;
}

/**
 * Builds a training step (softmax cross-entropy, momentum SGD) for `model` on a random batch. The
 * optimizer is the trainers' own (`@refconv/engine`'s SGD, torch.optim.SGD's update, momentum
 * 0.9), so the step is what `classify:train` and the other pipelines run.
 */
export function makeTrainStep(model: tf.LayersModel, batch: number, seed = 0): TrainStep {
  const shape = model.inputs[0].shape.slice(1) as number[];
  const classes = model.outputs[0].shape[1] as number;
  const x = tf.randomNormal([batch, ...shape], 0, 1, 'float32', seed);
  const y = tf.oneHot(tf.randomUniform([batch], 0, classes, 'int32', seed + 1) as tf.Tensor1D, classes);
  const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const optimizer = new SGD(vars.map((variable) => ({ name: variable.name, variable })), { momentum: 0.9 });
  const gradients = () => tf.variableGrads(
    () => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
    vars,
  ).grads;
  return {
    run() {
      tf.tidy(() => {
        optimizer.step(gradients(), 0.01);
      });
    },
    runPhases() {
      return tf.tidy(() => {
        const t0 = performance.now();
        const grads = gradients();
        // tfjs-node runs its kernels synchronously: the gradients and the update are complete when the calls return.
        const t1 = performance.now();
        optimizer.step(grads, 0.01);
        const t2 = performance.now();
        return { gradientsMs: t1 - t0, updateMs: t2 - t1, weights: vars.reduce((n, v) => n + v.size, 0) };
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

/**
 * A reusable inference batch (`predict`, reading the logits back) on fixed random data; `predict`
 * defaults to the model's own (eager) one, e.g. a `compileForInference` model's can be passed.
 */
export function makeInferStep(model: tf.LayersModel, batch: number, seed = 0, predict?: (x: tf.Tensor) => tf.Tensor | tf.Tensor[]): TrainStep {
  const shape = model.inputs[0].shape.slice(1) as number[];
  const x = tf.randomNormal([batch, ...shape], 0, 1, 'float32', seed);
  const run = predict ?? ((xx: tf.Tensor) => model.predict(xx) as tf.Tensor);
  return {
    run() {
      tf.tidy(() => {
        const y = run(x);
        (Array.isArray(y) ? y[0]! : y).dataSync();
      });
    },
    dispose() {
      x.dispose();
    },
  };
}

/** Images/s of inference, after one warm-up batch. */
export function inferThroughput(model: tf.LayersModel, batch: number, steps: number): number {
  const step = makeInferStep(model, batch);
  try {
    step.run();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) step.run();
    return (batch * steps) / ((performance.now() - t0) / 1000);
  } finally {
    step.dispose();
  }
}

/** Wall time of one call, in seconds. */
export function timeOnce(f: () => void): number {
  const t0 = performance.now();
  f();
  return (performance.now() - t0) / 1000;
}

/** Median of a non-empty list. */
export function median(values: number[]): number {
  if (values.length === 0) throw new Error('median of an empty list');
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The machine's aggregate CPU time counters (the `cpu` line of /proc/stat); null where unavailable. */
export function readCpuTimes(): number[] | null {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith('cpu '));
    return line ? line.trim().split(/\s+/).slice(1).map(Number) : null;
  } catch {
    return null;
  }
}

/**
 * Share (0-1) of CPU time between two {@link readCpuTimes} readings that the hypervisor gave to
 * other guests ("steal"); null if either reading is missing. A benchmark on a shared VM is only as
 * good as this number is small.
 */
export function stealShare(before: number[] | null, after: number[] | null): number | null {
  if (!before || !after) return null;
  const d = after.map((v, i) => v - (before[i] ?? 0));
  const total = d.reduce((a, b) => a + b, 0);
  return total > 0 ? (d[7] ?? 0) / total : null;
}
