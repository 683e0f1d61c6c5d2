/** The per-sample transform specification sent to loader workers (plain data). */
import { evalTransform, Rng, trainTransform, type ImageSource } from '@refconv/engine';

/** Training augmentation: RandomResizedCrop + horizontal flip + normalise. */
export interface TrainTransformSpec {
  kind: 'train';
  size: number;
  scale: [number, number];
  ratio: [number, number];
  flipProb: number;
  channels: 1 | 3;
  mean: number[];
  std: number[];
}

/** Evaluation preprocessing: Resize(shorter side) + CenterCrop + normalise. */
export interface EvalTransformSpec {
  kind: 'eval';
  resize: number;
  crop: number;
  channels: 1 | 3;
  mean: number[];
  std: number[];
}

export type TransformSpec = TrainTransformSpec | EvalTransformSpec;

/** Output side length of a transform. */
export const outputSize = (t: TransformSpec): number => (t.kind === 'train' ? t.size : t.crop);

/** Applies a transform to one image; `seed` drives the train-time randomness. */
export function applyTransform(src: ImageSource, spec: TransformSpec, seed: number): Promise<Float32Array> {
  if (spec.kind === 'train') return trainTransform(src, new Rng(seed), spec);
  return evalTransform(src, spec);
}
