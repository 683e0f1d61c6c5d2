/**
 * Classifier checkpoints of `@refconv/classify` to ONNX, and prediction with an exported file.
 *
 * A checkpoint (baseline, RefConv or fused) is rebuilt with classify's `loadClassifier`, fused with
 * BN folding (`fuse(model, { foldBatchNorm: true })`: RefConv layers become plain convs with W_t),
 * and exported; the preprocessing classify evaluates with (Resize shorter side + CenterCrop +
 * Normalize; ImageNet mean/std for RGB, Fashion-MNIST's for grey) and the class names are stored as
 * metadata, so {@link predictOnnx} needs nothing but the file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { compileForInference, fuse } from '@refconv/core';
import { evalTransform, IMAGENET_MEAN, IMAGENET_STD } from '@refconv/engine';
import { FASHION_MNIST_MEAN, FASHION_MNIST_STD, loadClassifier } from '@refconv/classify';
import { exportOnnx, readOnnxMetadata } from './export.js';
import { classifierPreprocessing, RESIZE_KEY, softmaxTopK, type DeployMetadata, type ModelMetadata } from './metadata.js';
import { createSession, runSession, type OrtSessionOptions } from './ort.js';

export { RESIZE_KEY } from './metadata.js';

/** Options of {@link exportClassifierCheckpoint}. */
export interface ExportCheckpointOptions {
  layout?: 'NCHW' | 'NHWC';
  /** Override the stored normalisation (default: ImageNet for RGB, Fashion-MNIST for grey). */
  mean?: number[];
  std?: number[];
  /** Resize shorter side before the crop (default: the input size for grey 28 px models, else round(input / 0.875), as classify:eval). */
  resize?: number;
}

/** Result of {@link exportClassifierCheckpoint}. */
export interface ExportedCheckpoint {
  bytes: Uint8Array;
  /** The fused, BN-folded tfjs model that was exported (caller disposes). */
  model: tf.LayersModel;
  metadata: DeployMetadata;
  arch: string;
  kind: 'baseline' | 'refconv' | 'fused';
}

/** Loads a classify checkpoint, fuses it with BN folding and exports it to ONNX bytes (not written). */
export function exportClassifierCheckpoint(file: string, options: ExportCheckpointOptions = {}): ExportedCheckpoint {
  const { model, spec, checkpoint } = loadClassifier(file);
  const kind = spec.fused ? 'fused' : spec.refocus ? 'refconv' : 'baseline';
  const fused = fuse(model, { foldBatchNorm: true });
  model.dispose();
  const grey = spec.inChannels === 1;
  const mean = options.mean ?? (grey ? [...FASHION_MNIST_MEAN] : [...IMAGENET_MEAN]);
  const std = options.std ?? (grey ? [...FASHION_MNIST_STD] : [...IMAGENET_STD]);
  if (mean.length !== spec.inChannels || std.length !== spec.inChannels) {
    throw new Error(`${file}: the model has ${spec.inChannels} input channel(s) but mean/std have ${mean.length}/${std.length} values`);
  }
  const resize = options.resize ?? (grey && spec.inputSize === 28 ? 28 : Math.round(spec.inputSize / 0.875));
  const classNames = checkpoint.state.classNames ?? Array.from({ length: spec.numClasses }, (_, i) => String(i));
  const metadata: DeployMetadata = {
    mean,
    std,
    inputSize: [spec.inputSize, spec.inputSize],
    classNames,
    arch: spec.arch,
    extra: { [RESIZE_KEY]: String(resize), 'refconv.source_kind': kind, 'refconv.checkpoint': path.basename(file) },
  };
  const bytes = exportOnnx(fused, { layout: options.layout, metadata, graphName: `${spec.arch}-${kind}` });
  return { bytes, model: fused, metadata, arch: spec.arch, kind };
}

/** One image's top-k. */
export interface Prediction {
  image: string;
  top: { index: number; name: string; probability: number; logit: number }[];
}

/**
 * Preprocesses images as the model's metadata says (Resize shorter side, CenterCrop, Normalize) into
 * one batch in the model's layout: NCHW `[N, C, H, W]` or NHWC `[N, H, W, C]`.
 */
export async function preprocessImages(images: string[], md: ModelMetadata): Promise<{ data: Float32Array; dims: number[] }> {
  const { crop: h, resize, mean, std, channels: c } = classifierPreprocessing(md);
  const w = h;
  const data = new Float32Array(images.length * c * h * w);
  for (let n = 0; n < images.length; n++) {
    if (!fs.existsSync(images[n])) throw new Error(`image ${images[n]} does not exist`);
    const hwc = await evalTransform(images[n], { crop: h, resize, channels: c as 1 | 3, mean, std });
    const base = n * c * h * w;
    if (md.layout === 'NHWC') data.set(hwc, base);
    else for (let i = 0; i < h * w; i++) for (let ch = 0; ch < c; ch++) data[base + ch * h * w + i] = hwc[i * c + ch];
  }
  return { data, dims: md.layout === 'NHWC' ? [images.length, h, w, c] : [images.length, c, h, w] };
}

/** Softmax probabilities and the top-k of `[N, K]` logits. */
export function topK(logits: Float32Array, n: number, k: number, names: string[] | undefined, images: string[]): Prediction[] {
  const K = logits.length / n;
  const out: Prediction[] = [];
  for (let i = 0; i < n; i++) out.push({ image: images[i], top: softmaxTopK(logits.subarray(i * K, (i + 1) * K), k, names) });
  return out;
}

/** Top-k classes of each image with an exported model in onnxruntime-node (its stored preprocessing). */
export async function predictOnnx(modelFile: string, images: string[], options: { topk?: number } & OrtSessionOptions = {}): Promise<Prediction[]> {
  if (!fs.existsSync(modelFile)) throw new Error(`model ${modelFile} does not exist`);
  const md = readOnnxMetadata(fs.readFileSync(modelFile));
  const { data, dims } = await preprocessImages(images, md);
  const session = await createSession(modelFile, options);
  try {
    const outs = await runSession(session, data, dims);
    const first = outs[session.outputNames[0]];
    if (first.dims.length !== 2) throw new Error(`${modelFile}: first output '${session.outputNames[0]}' is [${first.dims.join(', ')}], expected [N, classes]`);
    return topK(first.data, images.length, options.topk ?? 5, md.classNames, images);
  } finally {
    await session.release();
  }
}

/**
 * The same prediction with a tfjs model (NHWC input) and the same preprocessing metadata, for
 * comparison. `runtime: 'graph'` (default) runs it compiled (`compileForInference` from
 * @refconv/core: TensorFlow's graph runtime, verified against the eager model), `'eager'` op by op.
 */
export async function predictTfjs(model: tf.LayersModel, metadata: DeployMetadata & { props?: Record<string, string> }, images: string[], topk = 5, runtime: 'graph' | 'eager' = 'graph'): Promise<Prediction[]> {
  const md = { ...metadata, layout: 'NHWC' as const, props: { ...(metadata.extra ?? {}), ...(metadata.props ?? {}) } };
  const { data, dims } = await preprocessImages(images, md);
  const compiled = runtime === 'graph' ? await compileForInference(model) : undefined;
  try {
    const run = (x: tf.Tensor) => (compiled ? compiled.predict(x) : model.predict(x)) as tf.Tensor;
    const logits = tf.tidy(() => run(tf.tensor(data, dims)).dataSync() as Float32Array).slice();
    return topK(logits, images.length, topk, metadata.classNames, images);
  } finally {
    compiled?.dispose();
  }
}
