/**
 * Deployment check for a refocused segmenter: fuse it (W_t computed once, RefConv2D ->
 * plain conv) and show that the result is the plain segmenter of the same spec: equal
 * parameter count and FLOPs, weights that load strictly into a freshly built plain model,
 * and the same predictions as the training-form (refocused) model.
 */
import * as tf from '@tensorflow/tfjs';
import { countFlops, countParams, fuse } from '@refconv/core';
import { loadCheckpoint, modelWeights, setModelWeights } from '@refconv/engine';
import type { SafeTensor } from '@refconv/core';
import { createSegmenter, mainLogits, type BackboneFactory, type SegmenterSpec } from './model/segmenter.js';
import { refocusSegmenter } from './model/segmenter-refconv.js';

/** Numbers printed by `--refconv` runs and checked by tests. */
export interface FuseReport {
  refocusedLayers: number;
  params: { plain: number; refocused: number; fused: number };
  flops: { plain: number; refocused: number; fused: number };
  /** max |logits(refocused) - logits(plain model holding the fused weights)| on a random input. */
  maxAbsDiff: number;
  /** Fraction of pixels with the same arg-max class. */
  argmaxAgreement: number;
  /** Params and FLOPs equal and predictions agree. */
  identical: boolean;
}

/** Weights of a model as the Map that setModelWeights reads. */
function weightMap(model: tf.LayersModel): Map<string, SafeTensor> {
  return new Map(Object.entries(modelWeights(model)).map(([k, v]) => [k, { dtype: 'F32', shape: v.shape, data: v.data } as unknown as SafeTensor]));
}

/**
 * Runs the check on a refocused checkpoint (or on an in-memory refocused model with its spec).
 * @param inputSize fixed `[h, w]` at which FLOPs are counted and predictions compared.
 */
export async function fuseCheck(
  source: string | { model: tf.LayersModel; spec: SegmenterSpec },
  opts: { inputSize: [number, number]; factory?: BackboneFactory; seed?: number },
): Promise<FuseReport> {
  let spec: SegmenterSpec;
  let weights: Map<string, SafeTensor>;
  if (typeof source === 'string') {
    const ck = loadCheckpoint(source);
    spec = ck.state.model as unknown as SegmenterSpec;
    if (!spec?.refconv) throw new Error(`${source} is not a refocused checkpoint (train one with --refconv)`);
    weights = ck.weights;
  } else {
    spec = source.spec;
    if (!spec.refconv) throw new Error('fuseCheck: the spec has no refconv section');
    weights = weightMap(source.model);
  }
  const plainSpec: SegmenterSpec = { ...spec, refconv: undefined };
  const size = opts.inputSize;
  const plain = createSegmenter(plainSpec, size, opts.factory);
  const base = createSegmenter(plainSpec, size, opts.factory);
  const { model: refocused, layers } = refocusSegmenter(base, { mapK: spec.refconv!.mapK as 1 | 3 | 5, aspp: spec.refconv!.aspp });
  base.dispose();
  setModelWeights(refocused, weights, { source: typeof source === 'string' ? source : 'refocused model' });
  const fused = fuse(refocused);
  // the fused weights must load, strictly, into the plain architecture
  setModelWeights(plain, weightMap(fused), { source: 'fused model' });
  const x = tf.randomNormal([1, size[0], size[1], 3], 0, 1, 'float32', opts.seed ?? 0);
  const [a, b] = [mainLogits(refocused.predict(x) as tf.Tensor), mainLogits(plain.predict(x) as tf.Tensor)];
  const maxAbsDiff = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
  const agree = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(a, -1), tf.argMax(b, -1)), 'float32')).dataSync()[0]!);
  const report: FuseReport = {
    refocusedLayers: layers.length,
    params: { plain: countParams(plain), refocused: countParams(refocused), fused: countParams(fused) },
    flops: { plain: countFlops(plain), refocused: countFlops(refocused), fused: countFlops(fused) },
    maxAbsDiff,
    argmaxAgreement: agree,
    identical: false,
  };
  report.identical = report.params.plain === report.params.fused && report.flops.plain === report.flops.fused && agree === 1 && maxAbsDiff < 1e-3;
  tf.dispose([x, a, b]);
  plain.dispose();
  refocused.dispose();
  fused.dispose();
  return report;
}

/** Human-readable lines of a {@link FuseReport}. */
export function formatFuseReport(r: FuseReport): string {
  const m = (n: number) => (n / 1e6).toFixed(4);
  const g = (n: number) => (n / 1e9).toFixed(4);
  return [
    `fuse check (${r.refocusedLayers} RefConv2D layers):`,
    `  params (M):  plain ${m(r.params.plain)}  refocused ${m(r.params.refocused)}  fused ${m(r.params.fused)}`,
    `  GFLOPs (MACs): plain ${g(r.flops.plain)}  refocused ${g(r.flops.refocused)}  fused ${g(r.flops.fused)}`,
    `  refocused vs plain-with-fused-weights: max |dlogits| ${r.maxAbsDiff.toExponential(2)}, same arg-max on ${(100 * r.argmaxAgreement).toFixed(2)}% of pixels`,
    `  ${r.identical ? 'OK: the fused model is the plain model' : 'MISMATCH'}`,
  ].join('\n');
}
