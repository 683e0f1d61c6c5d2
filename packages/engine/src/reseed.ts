/**
 * Seeded re-initialisation. tfjs initialisers draw from an unseeded global generator unless
 * each one is given a seed, so two processes build differently initialised models; runs that
 * must be reproducible (and a killed-and-resumed run that must equal an uninterrupted one)
 * re-draw the random weights here.
 */
import * as tf from '@tensorflow/tfjs';
import { deriveSeed } from './rng.js';

const RANDOM_INITIALIZERS = new Set([
  'RandomUniform', 'RandomNormal', 'TruncatedNormal', 'VarianceScaling', 'GlorotUniform', 'GlorotNormal',
  'HeNormal', 'HeUniform', 'LeCunNormal', 'LeCunUniform', 'Orthogonal',
]);

interface InitializerConfig {
  className: string;
  config: Record<string, unknown>;
}

/** `conv1/depthwise_kernel` -> `depthwiseInitializer`, `fc/kernel` -> `kernelInitializer`, ... */
function initializerKey(weightName: string): string {
  const short = weightName.slice(weightName.lastIndexOf('/') + 1);
  if (short === 'depthwise_kernel') return 'depthwiseInitializer';
  const camel = short.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  return `${camel}Initializer`;
}

/**
 * Re-draws every weight whose layer config names a random initialiser (VarianceScaling,
 * Glorot, He, RandomUniform, ...) using that same initialiser with a seed derived from
 * `seed` and the weight's position. Constant-initialised weights (BN, zero biases) keep their
 * values. Weights whose initialiser is not in the layer config (custom layers) are left alone
 * and listed in `skipped`.
 */
export function reseedWeights(model: tf.LayersModel, seed: number): { reseeded: string[]; skipped: string[] } {
  const classNameMap = tf.serialization.SerializationMap.getMap().classNameMap;
  const reseeded: string[] = [];
  const skipped: string[] = [];
  let index = 0;
  for (const layer of model.layers) {
    const config = layer.getConfig() as Record<string, unknown>;
    for (const w of layer.weights) {
      index++;
      const cfg = config[initializerKey(w.originalName)] as InitializerConfig | undefined;
      if (!cfg || typeof cfg !== 'object' || typeof cfg.className !== 'string') {
        skipped.push(w.originalName);
        continue;
      }
      if (!RANDOM_INITIALIZERS.has(cfg.className)) continue;
      const entry = classNameMap[cfg.className];
      if (!entry) {
        skipped.push(w.originalName);
        continue;
      }
      const [cls, fromConfig] = entry;
      const init = fromConfig(cls, { ...cfg.config, seed: deriveSeed(seed, index) % 2147483647 }) as unknown as { apply(shape: number[], dtype?: tf.DataType): tf.Tensor };
      const value = tf.tidy(() => init.apply(w.read().shape, 'float32'));
      w.write(value);
      value.dispose();
      reseeded.push(w.originalName);
    }
  }
  return { reseeded, skipped };
}
