/**
 * Detector and segmenter checkpoints (`@refconv/detect`, `@refconv/segment`) to ONNX: the network
 * parts up to their raw outputs, rebuilt at one fixed input size, RefConv layers fused and BN folded.
 * Anchors, box decoding, RoIAlign, NMS and the final resizing stay in TypeScript.
 *
 * - RetinaNet: one file, outputs `cls_p3..cls_p7` (`[N, A·K, h, w]` logits) and `box_p3..box_p7`
 *   (`[N, A·4, h, w]` deltas).
 * - Faster R-CNN: the network (`p2..p5`, `pool` FPN maps, `rpn_cls_p2..p6`, `rpn_box_p2..p6`) and,
 *   as a second file, the RoI box head (`[K, 7, 7, C]` RoIAlign features -> `class_logits`,
 *   `box_regression`).
 * - DeepLabV3 / V3+: one file, `logits` `[N, classes, H, W]` (and `aux_logits` with the aux head).
 */
import * as tf from '@tensorflow/tfjs';
import { fuse } from '@refconv/core';
import { IMAGENET_MEAN, IMAGENET_STD, loadCheckpoint, setModelWeights } from '@refconv/engine';
import { loadDetector, type DetectorDescription } from '@refconv/detect';
import { buildFromSpec, deployWeights, SizedModels, type SegmenterSpec } from '@refconv/segment';
import { exportOnnx } from './export.js';
import type { DeployMetadata } from './metadata.js';

/** Which package wrote a checkpoint (from its stored model description). */
export type CheckpointTask = 'classify' | 'detect' | 'segment';

/** Reads a checkpoint's task: a detector description (`kind`), a segmenter spec (`arch` deeplabv3*), else classify. */
export function checkpointTask(file: string): CheckpointTask {
  const m = loadCheckpoint(file).state.model as Record<string, unknown> | undefined;
  if (m?.kind === 'retinanet' || m?.kind === 'fasterrcnn') return 'detect';
  if (m?.arch === 'deeplabv3' || m?.arch === 'deeplabv3plus') return 'segment';
  return 'classify';
}

/** One exported graph of a checkpoint. */
export interface ExportedGraph {
  /** `network` or `box_head` (Faster R-CNN's second file). */
  part: 'network' | 'box_head';
  bytes: Uint8Array;
  /** The tfjs model that was exported (fused, BN folded; caller disposes). */
  model: tf.LayersModel;
  outputNames: string[];
}

/** Result of {@link exportDetectorCheckpoint} / {@link exportSegmenterCheckpoint}. */
export interface ExportedNetworks {
  task: 'detect' | 'segment';
  /** `retinanet`, `fasterrcnn`, `deeplabv3` or `deeplabv3plus`. */
  kind: string;
  inputSize: [number, number];
  refconv: boolean;
  graphs: ExportedGraph[];
  metadata: DeployMetadata;
}

/** Options of the checkpoint exports. */
export interface NetworkExportOptions {
  /** Input `[H, W]` of the exported network (detectors: required, multiples of 32; segmenters: default the training crop). */
  size?: [number, number];
  layout?: 'NCHW' | 'NHWC';
}

const LEVELS = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/**
 * A `@refconv/detect` checkpoint (plain or RefConv) rebuilt at `size`, fused with BN folding and
 * exported (two graphs for Faster R-CNN). Metadata: ImageNet mean/std, input size, class names,
 * `refconv.task = detect`, `refconv.detector = retinanet | fasterrcnn`.
 */
export function exportDetectorCheckpoint(file: string, options: NetworkExportOptions = {}): ExportedNetworks {
  const size = options.size;
  if (!size) throw new Error(`${file}: a detector is exported at a fixed input size: give it (--size H W, multiples of 32)`);
  if (size.some((s) => !Number.isInteger(s) || s <= 0 || s % 32 !== 0)) throw new Error(`${file}: detector input size must be positive multiples of 32 (the FPN doubles each level), got ${size.join('x')}`);
  const stored = loadCheckpoint(file).state.model as unknown as DetectorDescription;
  const { det, desc } = loadDetector(file, { backbone: { ...stored.options.backbone, inputSize: size } });
  const fused = fuse(det.model, { foldBatchNorm: true });
  const metadata: DeployMetadata = {
    mean: [...IMAGENET_MEAN],
    std: [...IMAGENET_STD],
    inputSize: size,
    classNames: [...desc.categories.names],
    arch: `${desc.kind}-${desc.options.backbone.arch}`,
    extra: { 'refconv.task': 'detect', 'refconv.detector': desc.kind, 'refconv.refconv': String(Boolean(desc.refocus)) },
  };
  const graphs: ExportedGraph[] = [];
  if (desc.kind === 'retinanet') {
    const outputNames = [...LEVELS(3, 7).map((l) => `cls_p${l}`), ...LEVELS(3, 7).map((l) => `box_p${l}`)];
    graphs.push({ part: 'network', bytes: exportOnnx(fused, { layout: options.layout, outputNames, metadata, graphName: 'retinanet' }), model: fused, outputNames });
  } else {
    const outputNames = ['p2', 'p3', 'p4', 'p5', 'pool', ...LEVELS(2, 6).map((l) => `rpn_cls_p${l}`), ...LEVELS(2, 6).map((l) => `rpn_box_p${l}`)];
    graphs.push({ part: 'network', bytes: exportOnnx(fused, { layout: options.layout, outputNames, metadata, graphName: 'fasterrcnn' }), model: fused, outputNames });
    const head = det.parts()[1]!;
    const [, h, w] = head.inputs[0]!.shape as number[];
    const headNames = ['class_logits', 'box_regression'];
    const headMeta: DeployMetadata = { ...metadata, inputSize: [h!, w!], extra: { ...metadata.extra, 'refconv.part': 'box_head' } };
    graphs.push({ part: 'box_head', bytes: exportOnnx(head, { layout: options.layout, outputNames: headNames, metadata: headMeta, graphName: 'fasterrcnn_box_head' }), model: head, outputNames: headNames });
  }
  det.model.dispose(); // the exported graph is the fused copy
  return { task: 'detect', kind: desc.kind, inputSize: size, refconv: Boolean(desc.refocus), graphs, metadata };
}

/**
 * A `@refconv/segment` checkpoint (plain or RefConv; a refocused one is fused as segment:eval does)
 * rebuilt at `size` (default: the training crop), BN folded and exported. Metadata: the dataset's
 * mean/std as stored (else ImageNet's), input size, class names, `refconv.task = segment`.
 */
export function exportSegmenterCheckpoint(file: string, options: NetworkExportOptions = {}): ExportedNetworks {
  const ck = loadCheckpoint(file);
  const spec = ck.state.model as unknown as SegmenterSpec;
  const extra = (ck.state.extra ?? {}) as { cropSize?: [number, number]; mean?: number[]; std?: number[] };
  const trainCrop = extra.cropSize ?? [512, 512];
  const size = options.size ?? trainCrop;
  const trained = buildFromSpec(spec, trainCrop);
  setModelWeights(trained, ck.weights, { source: file });
  const sized = new SizedModels(spec, deployWeights(trained, spec));
  trained.dispose();
  const plain = sized.get(size[0], size[1]);
  const fused = fuse(plain, { foldBatchNorm: true });
  sized.dispose();
  const metadata: DeployMetadata = {
    mean: extra.mean ?? [...IMAGENET_MEAN],
    std: extra.std ?? [...IMAGENET_STD],
    inputSize: size,
    classNames: ck.state.classNames ?? Array.from({ length: spec.numClasses }, (_, i) => String(i)),
    arch: `${spec.arch}-${spec.backbone}`,
    extra: { 'refconv.task': 'segment', 'refconv.refconv': String(Boolean(spec.refconv)) },
  };
  const outputNames = spec.aux ? ['logits', 'aux_logits'] : ['logits'];
  const bytes = exportOnnx(fused, { layout: options.layout, outputNames, metadata, graphName: spec.arch });
  return { task: 'segment', kind: spec.arch, inputSize: size, refconv: Boolean(spec.refconv), graphs: [{ part: 'network', bytes, model: fused, outputNames }], metadata };
}
