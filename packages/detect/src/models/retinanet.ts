/**
 * RetinaNet (Lin et al. 2017) as torchvision's `retinanet_resnet50_fpn`: backbone C3..C5,
 * FPN P3..P7, 9 anchors per location, a classification head (sigmoid focal loss, prior-probability
 * bias init) and a box regression head shared across levels, score threshold, top-k candidates per
 * level, per-class NMS and a cap on detections per image.
 *
 * The network is one tfjs LayersModel (`image -> [cls P3..P7, box P3..P7]`, NHWC) so that
 * @refconv/core's `refocus` / `fuse` can rewrite it; losses and decoding live in {@link RetinaNet}.
 */
import * as tf from '@tensorflow/tfjs';
import { AnchorGenerator, DEFAULT_ASPECT_RATIOS, RETINANET_ANCHOR_SIZES, type GridSize } from '../ops/anchors.js';
import { BoxCoder } from '../ops/box-coder.js';
import { batchedNms, boxIouHost } from '../ops/boxes.js';
import { generalizedBoxIouLoss, l1Loss, sigmoidFocalLoss, smoothL1Loss } from '../ops/losses.js';
import { BETWEEN_THRESHOLDS, Matcher } from '../ops/matcher.js';
import { createBackbone, type BackboneOptions } from './backbone.js';
import type { BatchGeometry, Detections, ImageTargets } from './detector.js';
import { fpnP3P7 } from './fpn.js';

/** Box regression loss kinds (torchvision `bbox_reg_loss_type`; RetinaNet's default is `l1`). */
export type BoxLossKind = 'l1' | 'smooth_l1' | 'giou';

/** Everything that defines a RetinaNet; stored in checkpoints to rebuild the model. */
export interface RetinaNetOptions {
  /** Number of object classes (no background class: sigmoid outputs). */
  numClasses: number;
  backbone: BackboneOptions;
  /** FPN and head width (torchvision 256). */
  fpnChannels?: number;
  /** 3x3 conv + ReLU blocks in each head before the output conv (torchvision 4). */
  headConvs?: number;
  /** Anchor sizes per level P3..P7 (default torchvision's 32..512 with 3 scales). */
  anchorSizes?: number[][];
  /** Aspect ratios (h / w), one list for all levels (default 0.5, 1, 2). */
  aspectRatios?: number[];
  /** Initial foreground probability of the classifier (bias init), default 0.01. */
  priorProbability?: number;
  boxLoss?: BoxLossKind;
  /** Smooth-L1 transition point (torchvision default 1.0 when `boxLoss` is `smooth_l1`). */
  smoothL1Beta?: number;
  focalAlpha?: number;
  focalGamma?: number;
  /** IoU for foreground anchors (0.5) and below which anchors are background (0.4). */
  fgIouThreshold?: number;
  bgIouThreshold?: number;
  /** Inference: minimum score (0.05), NMS IoU (0.5), detections kept per image (300), candidates per level (1000). */
  scoreThreshold?: number;
  nmsThreshold?: number;
  detectionsPerImage?: number;
  topkCandidates?: number;
  /**
   * Keep BatchNorm in inference mode with frozen scale/shift (torchvision `FrozenBatchNorm2d`,
   * right for pretrained backbones). Default true; use false to train a backbone from scratch.
   */
  freezeBatchNorm?: boolean;
  /** Seed for the head/FPN initialisers. */
  seed?: number;
}

type Resolved = Required<RetinaNetOptions>;

/** Fills in torchvision's defaults. */
export function resolveRetinaNetOptions(o: RetinaNetOptions): Resolved {
  if (!Number.isInteger(o.numClasses) || o.numClasses < 1) throw new Error(`RetinaNet: numClasses must be a positive integer, got ${o.numClasses}`);
  return {
    fpnChannels: 256,
    headConvs: 4,
    anchorSizes: RETINANET_ANCHOR_SIZES.map((s) => [...s]),
    aspectRatios: [...DEFAULT_ASPECT_RATIOS],
    priorProbability: 0.01,
    boxLoss: 'l1',
    smoothL1Beta: 1,
    focalAlpha: 0.25,
    focalGamma: 2,
    fgIouThreshold: 0.5,
    bgIouThreshold: 0.4,
    scoreThreshold: 0.05,
    nmsThreshold: 0.5,
    detectionsPerImage: 300,
    topkCandidates: 1000,
    freezeBatchNorm: true,
    seed: 0,
    ...o,
  };
}

/** Head outputs with levels concatenated. */
export interface HeadOutputs {
  /** `[B, T, K]` logits, T = all anchors of all levels. */
  cls: tf.Tensor3D;
  /** `[B, T, 4]` box codes. */
  box: tf.Tensor3D;
  /** Feature map size per level. */
  grids: GridSize[];
}

function headTower(name: string, levels: tf.SymbolicTensor[], o: Resolved, outFilters: number, biasInit: number): tf.SymbolicTensor[] {
  const normal = (s: number) => tf.initializers.randomNormal({ mean: 0, stddev: 0.01, seed: o.seed + s });
  const convs = Array.from({ length: o.headConvs }, (_, i) =>
    tf.layers.conv2d({ filters: o.fpnChannels, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: normal(100 + i), name: `${name}_conv${i + 1}` }),
  );
  const out = tf.layers.conv2d({
    filters: outFilters,
    kernelSize: 3,
    padding: 'same',
    kernelInitializer: normal(200),
    biasInitializer: tf.initializers.constant({ value: biasInit }),
    name: `${name}_out`,
  });
  // The same layer objects are applied to every level: weights are shared across P3..P7.
  return levels.map((p) => out.apply(convs.reduce((x, c) => c.apply(x) as tf.SymbolicTensor, p)) as tf.SymbolicTensor);
}

/** Builds the RetinaNet network `image -> [cls P3..P7, box P3..P7]` around a C2..C5 backbone. */
export function buildRetinaNetModel(options: RetinaNetOptions, backbone?: tf.LayersModel): tf.LayersModel {
  const o = resolveRetinaNetOptions(options);
  const body = backbone ?? createBackbone(o.backbone);
  if (o.freezeBatchNorm) {
    for (const l of body.layers) if (l.getClassName() === 'BatchNormalization') l.trainable = false;
  }
  const size = o.backbone.inputSize;
  const input = tf.input({ shape: [size?.[0] ?? null, size?.[1] ?? null, 3] as number[], name: 'images' });
  const feats = body.apply(input) as tf.SymbolicTensor[];
  const pyramid = fpnP3P7(feats.slice(1), o.fpnChannels, o.seed);
  const anchors = o.aspectRatios.length * o.anchorSizes[0]!.length;
  const bias = -Math.log((1 - o.priorProbability) / o.priorProbability);
  const cls = headTower('cls_head', pyramid, o, anchors * o.numClasses, bias);
  const box = headTower('box_head', pyramid, o, anchors * 4, 0);
  return tf.model({ inputs: input, outputs: [...cls, ...box], name: 'retinanet' });
}

/**
 * The parts a RetinaNet is assembled from besides its network (torchvision's `anchor_generator`,
 * `box_coder`, `proposal_matcher`); each defaults to torchvision's, built from the options.
 */
export interface RetinaNetParts {
  /** Anchors per level; default: `anchorSizes` x `aspectRatios` of the options. */
  anchorGenerator?: AnchorGenerator;
  /** Box encoding relative to anchors; default weights (1, 1, 1, 1). */
  boxCoder?: BoxCoder;
  /** Anchor-to-ground-truth matching; default IoU >= fgIouThreshold foreground, < bgIouThreshold background, low-quality matches allowed. */
  matcher?: Matcher;
}

/** A RetinaNet network with its anchor generator, box coder, matcher, losses and decoding. */
export class RetinaNet {
  readonly options: Resolved;
  readonly anchorGenerator: AnchorGenerator;
  readonly boxCoder: BoxCoder;
  readonly matcher: Matcher;
  private anchorCache?: { key: string; anchors: Float32Array; tensor: tf.Tensor2D };
  /** Runs the network outside training when set (see Detector.inference). */
  inference?: { predict(x: tf.Tensor): tf.Tensor | tf.Tensor[] };

  /**
   * @param model the network from {@link buildRetinaNetModel} (or its refocused / fused form)
   * @param parts injected anchor generator, box coder and matcher (defaults from `options`)
   */
  constructor(
    readonly model: tf.LayersModel,
    options: RetinaNetOptions,
    parts: RetinaNetParts = {},
  ) {
    this.options = resolveRetinaNetOptions(options);
    this.anchorGenerator = parts.anchorGenerator ?? new AnchorGenerator(this.options.anchorSizes, [this.options.aspectRatios]);
    this.boxCoder = parts.boxCoder ?? new BoxCoder([1, 1, 1, 1]);
    this.matcher = parts.matcher ?? new Matcher({ highThreshold: this.options.fgIouThreshold, lowThreshold: this.options.bgIouThreshold, allowLowQualityMatches: true });
    if (model.outputs.length !== 10) throw new Error(`RetinaNet: the network must have 10 outputs (cls and box for P3..P7), got ${model.outputs.length}`);
    const perLocation = this.anchorGenerator.numAnchorsPerLocation();
    const expected = this.options.aspectRatios.length * this.options.anchorSizes[0]!.length;
    if (perLocation.some((n) => n !== expected)) {
      throw new Error(`RetinaNet: the anchor generator makes [${perLocation}] anchors per location but the heads predict ${expected} (aspectRatios x anchorSizes per level)`);
    }
  }

  /** Builds a fresh network from options. */
  static create(options: RetinaNetOptions, backbone?: tf.LayersModel, parts: RetinaNetParts = {}): RetinaNet {
    return new RetinaNet(buildRetinaNetModel(options, backbone), options, parts);
  }

  /** The same detector (same parts) around another network (e.g. refocused or fused). */
  withModel(model: tf.LayersModel): RetinaNet {
    return new RetinaNet(model, this.options, { anchorGenerator: this.anchorGenerator, boxCoder: this.boxCoder, matcher: this.matcher });
  }

  /** Runs the network; `training` means a training step (BatchNorm uses batch statistics unless frozen). */
  forward(images: tf.Tensor4D, training: boolean): HeadOutputs {
    const K = this.options.numClasses;
    const [B] = images.shape;
    let grids: GridSize[] = [];
    const [cls, box] = tf.tidy(() => {
      const outs = (!training && this.inference
        ? this.inference.predict(images)
        : this.model.apply(images, { training: training && !this.options.freezeBatchNorm })) as tf.Tensor4D[];
      grids = outs.slice(0, 5).map((t) => [t.shape[1], t.shape[2]] as GridSize);
      return [tf.concat(outs.slice(0, 5).map((t) => t.reshape([B, -1, K])), 1), tf.concat(outs.slice(5).map((t) => t.reshape([B, -1, 4])), 1)];
    });
    return { cls: cls as tf.Tensor3D, box: box as tf.Tensor3D, grids };
  }

  /**
   * Training losses of a batch by torchvision's names (`classification`, `bbox_regression`).
   * Call inside `tf.variableGrads` / `tf.tidy`.
   */
  losses(images: tf.Tensor4D, targets: ImageTargets[], geometry: BatchGeometry): Record<string, tf.Scalar> {
    const out = this.forward(images, true);
    const l = this.computeLoss(out, targets, geometry.padded);
    return { classification: l.classification, bbox_regression: l.regression };
  }

  /** Trainable variables. */
  trainableWeights(): tf.LayerVariable[] {
    return this.model.trainableWeights;
  }

  /** Sub-models holding weights (saved in checkpoints). */
  parts(): tf.LayersModel[] {
    return [this.model];
  }

  /** Anchors `[T * 4]` for a padded image size and feature grids (cached for the last size). */
  anchors(padded: [number, number], grids: GridSize[]): { anchors: Float32Array; tensor: tf.Tensor2D } {
    const key = `${padded.join('x')}:${grids.map((g) => g.join('x')).join(',')}`;
    if (this.anchorCache?.key !== key) {
      this.anchorCache?.tensor.dispose();
      const anchors = this.anchorGenerator.generate(padded, grids);
      // kept: anchors() may be first called inside a tidy / gradient scope
      this.anchorCache = { key, anchors, tensor: tf.keep(tf.tensor2d(anchors, [anchors.length / 4, 4])) };
    }
    return this.anchorCache;
  }

  /** Releases cached tensors (not the network). */
  dispose(): void {
    this.anchorCache?.tensor.dispose();
    this.anchorCache = undefined;
  }

  /**
   * torchvision's RetinaNet losses for a batch: per image, focal loss over all anchors that are
   * not between thresholds and box loss over foreground anchors, each divided by
   * max(1, #foreground); then averaged over images.
   */
  computeLoss(out: HeadOutputs, targets: ImageTargets[], padded: [number, number]): { classification: tf.Scalar; regression: tf.Scalar } {
    const { anchors, tensor: anchorT } = this.anchors(padded, out.grids);
    const T = anchors.length / 4;
    const K = this.options.numClasses;
    return tf.tidy(() => {
      const clsLosses: tf.Tensor[] = [];
      const boxLosses: tf.Tensor[] = [];
      targets.forEach((t, b) => {
        const a = this.assign(t, anchors);
        const norm = Math.max(1, a.foreground.length);
        const clsTarget = new Float32Array(T * K);
        a.foreground.forEach((p, j) => (clsTarget[p * K + t.labels[a.matchedGt[j]!]!] = 1));
        const logits = out.cls.slice([b, 0, 0], [1, T, K]).reshape([T, K]);
        const focal = sigmoidFocalLoss(logits, tf.tensor2d(clsTarget, [T, K]), { alpha: this.options.focalAlpha, gamma: this.options.focalGamma });
        clsLosses.push(focal.mul(tf.tensor2d(a.valid, [T, 1])).sum().div(norm));
        if (a.foreground.length === 0) {
          boxLosses.push(tf.scalar(0));
          return;
        }
        const fgIdx = tf.tensor1d(Int32Array.from(a.foreground), 'int32');
        const pred = tf.gather(out.box.slice([b, 0, 0], [1, T, 4]).reshape([T, 4]), fgIdx) as tf.Tensor2D;
        const fgAnchors = tf.gather(anchorT, fgIdx) as tf.Tensor2D;
        const gt = tf.tensor2d(Float32Array.from(a.matchedGt.flatMap((g) => Array.from(t.boxes.subarray(4 * g, 4 * g + 4)))), [a.foreground.length, 4]);
        boxLosses.push(this.boxLoss(pred, gt, fgAnchors).div(norm));
      });
      const n = targets.length;
      return { classification: tf.addN(clsLosses).div(n) as tf.Scalar, regression: tf.addN(boxLosses).div(n) as tf.Scalar };
    });
  }

  private boxLoss(pred: tf.Tensor2D, gt: tf.Tensor2D, anchors: tf.Tensor2D): tf.Tensor {
    switch (this.options.boxLoss) {
      case 'l1':
        return l1Loss(pred, this.boxCoder.encode(gt, anchors), 'sum');
      case 'smooth_l1':
        return smoothL1Loss(pred, this.boxCoder.encode(gt, anchors), { beta: this.options.smoothL1Beta, reduction: 'sum' });
      case 'giou':
        return generalizedBoxIouLoss(this.boxCoder.decode(pred, anchors), gt, { reduction: 'sum' });
      default:
        throw new Error(`RetinaNet: unknown box loss '${String(this.options.boxLoss)}' (expected l1, smooth_l1 or giou)`);
    }
  }

  /**
   * Anchor assignment of one image: foreground anchors with their ground truth, and the
   * `valid` mask (1 = counts in the classification loss, 0 = between thresholds).
   */
  assign(t: ImageTargets, anchors: Float32Array): { foreground: number[]; matchedGt: number[]; valid: Float32Array } {
    const T = anchors.length / 4;
    const G = t.labels.length;
    const valid = new Float32Array(T).fill(1);
    if (G === 0) return { foreground: [], matchedGt: [], valid };
    const quality = boxIouHost(t.boxes, anchors);
    const matches = this.matcher.match(quality, G, T);
    const foreground: number[] = [];
    const matchedGt: number[] = [];
    matches.forEach((m, p) => {
      if (m >= 0) {
        foreground.push(p);
        matchedGt.push(m);
      } else if (m === BETWEEN_THRESHOLDS) valid[p] = 0;
    });
    return { foreground, matchedGt, valid };
  }

  /** Inference for a batch: scores, top-k, decoding, clipping, per-class NMS, mapping back to original sizes. */
  detect(images: tf.Tensor4D, geometry: BatchGeometry): Detections[] {
    const out = this.forward(images, false);
    try {
      const { tensor: anchorT } = this.anchors(geometry.padded, out.grids);
      const levelSizes = out.grids.map(([h, w]) => h * w * this.anchorGenerator.numAnchorsPerLocation()[0]!);
      const logits = out.cls.dataSync() as Float32Array;
      return geometry.resized.map((resized, b) => this.postprocessImage(logits, out.box, anchorT, levelSizes, b, resized, geometry.original[b]!));
    } finally {
      out.cls.dispose();
      out.box.dispose();
    }
  }

  private postprocessImage(
    logits: Float32Array,
    boxCodes: tf.Tensor3D,
    anchorT: tf.Tensor2D,
    levelSizes: number[],
    b: number,
    resized: [number, number],
    original: [number, number],
  ): Detections {
    const o = this.options;
    const K = o.numClasses;
    const T = levelSizes.reduce((s, n) => s + n, 0);
    const anchorIdx: number[] = [];
    const labels: number[] = [];
    const scores: number[] = [];
    let start = 0;
    for (const n of levelSizes) {
      const cand: { i: number; s: number }[] = [];
      for (let i = start * K; i < (start + n) * K; i++) {
        const s = 1 / (1 + Math.exp(-logits[b * T * K + i]!));
        if (s > o.scoreThreshold) cand.push({ i, s });
      }
      cand.sort((x, y) => y.s - x.s || x.i - y.i);
      for (const { i, s } of cand.slice(0, o.topkCandidates)) {
        anchorIdx.push(Math.floor(i / K));
        labels.push(i % K);
        scores.push(s);
      }
      start += n;
    }
    if (scores.length === 0) return { boxes: new Float32Array(0), scores: new Float32Array(0), labels: new Int32Array(0) };
    const boxes = tf.tidy(() => {
      const idx = tf.tensor1d(Int32Array.from(anchorIdx), 'int32');
      const codes = tf.gather(boxCodes.slice([b, 0, 0], [1, T, 4]).reshape([T, 4]), idx) as tf.Tensor2D;
      return this.boxCoder.decode(codes, tf.gather(anchorT, idx) as tf.Tensor2D).dataSync() as Float32Array;
    });
    const [h, w] = resized;
    for (let i = 0; i < boxes.length; i += 4) {
      boxes[i] = Math.min(Math.max(boxes[i]!, 0), w);
      boxes[i + 1] = Math.min(Math.max(boxes[i + 1]!, 0), h);
      boxes[i + 2] = Math.min(Math.max(boxes[i + 2]!, 0), w);
      boxes[i + 3] = Math.min(Math.max(boxes[i + 3]!, 0), h);
    }
    const keep = batchedNms(boxes, scores, labels, o.nmsThreshold).slice(0, o.detectionsPerImage);
    const sx = original[1] / w;
    const sy = original[0] / h;
    const outBoxes = new Float32Array(keep.length * 4);
    keep.forEach((k, j) => outBoxes.set([boxes[4 * k]! * sx, boxes[4 * k + 1]! * sy, boxes[4 * k + 2]! * sx, boxes[4 * k + 3]! * sy], 4 * j));
    return { boxes: outBoxes, scores: Float32Array.from(keep, (k) => scores[k]!), labels: Int32Array.from(keep, (k) => labels[k]!) };
  }
}
