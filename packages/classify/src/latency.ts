/** Inference latency of a model, measured in this process. */
import * as tf from '@tensorflow/tfjs';

/** Latency statistics in milliseconds. */
export interface Latency {
  batch: number;
  runs: number;
  medianMs: number;
  p90Ms: number;
}

/**
 * Times `runs` forward passes of a random `[batch, H, W, C]` input (after `warmup` untimed
 * ones), each including the device-to-host read of the logits, and returns the median.
 */
export function measureLatency(model: tf.LayersModel, opts: { batch?: number; runs?: number; warmup?: number } = {}): Latency {
  const batch = opts.batch ?? 1;
  const runs = opts.runs ?? 30;
  const [, h, w, c] = model.inputs[0]!.shape as [null, number, number, number];
  const x = tf.randomNormal([batch, h, w, c]);
  const once = () => tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
  for (let i = 0; i < (opts.warmup ?? 5); i++) once();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    once();
    times.push(performance.now() - t0);
  }
  x.dispose();
  times.sort((a, b) => a - b);
  return { batch, runs, medianMs: times[Math.floor(runs / 2)]!, p90Ms: times[Math.min(runs - 1, Math.floor(runs * 0.9))]! };
}
