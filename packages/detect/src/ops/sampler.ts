/**
 * torchvision `BalancedPositiveNegativeSampler`: per image, up to `batchSizePerImage * positiveFraction`
 * random positives, and negatives filling the rest of `batchSizePerImage`.
 */

/** Where random permutations come from (`Rng` from @refconv/engine; tests pass a fixed one). */
export interface PermutationSource {
  permutation(n: number): number[];
}

/** Chosen indices of one image. */
export interface SampledIndices {
  positive: number[];
  negative: number[];
}

/**
 * @param labels per candidate: `> 0` positive, `0` negative, `< 0` ignored
 */
export function samplePositiveNegative(labels: ArrayLike<number>, batchSizePerImage: number, positiveFraction: number, rng: PermutationSource): SampledIndices {
  const pos: number[] = [];
  const neg: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! > 0) pos.push(i);
    else if (labels[i] === 0) neg.push(i);
  }
  const numPos = Math.min(Math.trunc(batchSizePerImage * positiveFraction), pos.length);
  const numNeg = Math.min(batchSizePerImage - numPos, neg.length);
  const pick = (from: number[], n: number) => rng.permutation(from.length).slice(0, n).map((i) => from[i]!);
  return { positive: pick(pos, numPos), negative: pick(neg, numNeg) };
}
