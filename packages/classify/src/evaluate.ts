/** Evaluation of a classifier on a split: top-1/top-5, loss, per-class accuracy, confusion matrix. */
import * as tf from '@tensorflow/tfjs';
import { compileForInference } from '@refconv/core';
import { createProgress, crossEntropy } from '@refconv/engine';
import type { Split } from './data/dataset.js';
import type { BatchLoader } from './data/loader.js';
import { outputSize, type TransformSpec } from './data/transforms.js';

/** Accuracy of one class. */
export interface ClassAccuracy {
  name: string;
  correct: number;
  total: number;
  /** correct / total in percent (NaN when the class has no images). */
  accuracy: number;
}

/** What {@link evaluate} returns. */
export interface EvalResult {
  /** Images evaluated (unreadable images left out with `--skip-bad-images` are not counted). */
  images: number;
  /** Top-1 / top-5 accuracy in percent. */
  top1: number;
  top5: number;
  /** Mean cross-entropy (no smoothing). */
  loss: number;
  perClass: ClassAccuracy[];
  /** `confusion[true][predicted]` counts. */
  confusion: number[][];
  /** Predicted class of every evaluated image, in dataset order of `indices`. */
  predictions: Int32Array;
  /** Dataset indices of the evaluated images. */
  indices: number[];
  seconds: number;
}

/** Options of {@link evaluate}. */
export interface EvaluateOptions {
  classNames: string[];
  /** Label for the progress line. */
  label?: string;
  /** Show a progress bar / log lines (default true). */
  progress?: boolean;
  /**
   * `graph` (default): the model compiled for inference (`compileForInference` from
   * @refconv/core: fused, BN folded, TensorFlow's graph runtime, verified against the eager model
   * on this host, falling back to it with a warning); `eager`: `model.predict` op by op.
   */
  runtime?: 'graph' | 'eager';
}

/** Runs the model in inference mode over the whole split. */
export async function evaluate(model: tf.LayersModel, split: Split, loader: BatchLoader, spec: TransformSpec, opts: EvaluateOptions): Promise<EvalResult> {
  const numClasses = opts.classNames.length;
  const outClasses = model.outputs[0]!.shape[1];
  if (outClasses !== numClasses) throw new Error(`evaluate: the model has ${outClasses} outputs but the dataset has ${numClasses} classes`);
  const runner = opts.runtime === 'eager' ? undefined : await compileForInference(model);
  try {
    return await evaluateWith(runner ? (x) => runner.predict(x) as tf.Tensor2D : (x) => model.predict(x) as tf.Tensor2D, split, loader, spec, opts);
  } finally {
    runner?.dispose();
  }
}

async function evaluateWith(predict: (x: tf.Tensor4D) => tf.Tensor2D, split: Split, loader: BatchLoader, spec: TransformSpec, opts: EvaluateOptions): Promise<EvalResult> {
  const numClasses = opts.classNames.length;
  const size = outputSize(spec);
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  const predictions: number[] = [];
  const indices: number[] = [];
  let top5 = 0;
  let lossSum = 0;
  const order = Array.from({ length: split.size }, (_, i) => i);
  const progress = opts.progress === false ? undefined : createProgress({ label: opts.label ?? 'eval', total: Math.ceil(split.size / loader.batchSize) });
  const t0 = performance.now();
  for await (const batch of loader.batches(split, order, spec, () => 0)) {
    if (batch.n === 0) continue;
    const { pred, top5Hits, loss } = tf.tidy(() => {
      const x = tf.tensor4d(batch.x, [batch.n, size, size, spec.channels]);
      const logits = predict(x);
      const y = tf.tensor1d(batch.labels, 'int32');
      const k = Math.min(5, numClasses);
      const topIdx = tf.topk(logits, k).indices;
      const hits = tf.sum(tf.cast(tf.equal(topIdx, tf.expandDims(y, 1)), 'int32'));
      return { pred: tf.argMax(logits, 1).dataSync() as Int32Array, top5Hits: hits.dataSync()[0]!, loss: crossEntropy(logits, y).dataSync()[0]! };
    });
    top5 += top5Hits;
    lossSum += loss * batch.n;
    for (let i = 0; i < batch.n; i++) {
      confusion[batch.labels[i]!]![pred[i]!]!++;
      predictions.push(pred[i]!);
      indices.push(batch.indices[i]!);
    }
    progress?.tick(1, batch.n);
  }
  const images = predictions.length;
  const correct = confusion.reduce((s, row, i) => s + row[i]!, 0);
  const perClass = confusion.map((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    return { name: opts.classNames[i]!, correct: row[i]!, total, accuracy: total ? (100 * row[i]!) / total : NaN };
  });
  const seconds = (performance.now() - t0) / 1000;
  const result = { images, top1: (100 * correct) / images, top5: (100 * top5) / images, loss: lossSum / images, perClass, confusion, predictions: Int32Array.from(predictions), indices, seconds };
  progress?.finish({ top1: result.top1, top5: result.top5 });
  return result;
}
