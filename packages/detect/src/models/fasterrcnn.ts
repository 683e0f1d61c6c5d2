/**
 * Faster R-CNN with FPN (Ren et al. 2015; Lin et al. 2017) as torchvision's
 * `fasterrcnn_resnet50_fpn`: backbone C2..C5, FPN P2..P5 + max-pool level, an RPN (3 anchors per
 * location per level, proposal top-k / NMS per level, 256 sampled anchors per image), MultiScale
 * RoIAlign (7x7, sampling ratio 2, FPN level assignment), a two-FC box head and a per-class box
 * predictor (512 sampled RoIs at 25% positives), with torchvision's losses and post-processing.
 *
 * Two LayersModels: `network` (image -> [P2..P5, pool, rpn objectness x5, rpn deltas x5]; the part
 * `refocus` / `fuse` rewrite) and `boxHead` (RoI features -> class logits, box deltas).
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '@refconv/engine';
import { AnchorGenerator, DEFAULT_ASPECT_RATIOS, type GridSize } from '../ops/anchors.js';
import { BoxCoder } from '../ops/box-coder.js';
import { batchedNms, boxIouHost } from '../ops/boxes.js';
import { binaryCrossEntropyWithLogits, smoothL1Loss } from '../ops/losses.js';
import { BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS, Matcher } from '../ops/matcher.js';
import { assignFpnLevels, roiAlign } from '../ops/roi-align.js';
import { samplePositiveNegative } from '../ops/sampler.js';
import { createBackbone, type BackboneOptions } from './backbone.js';
import { fpnP2P6 } from './fpn.js';
import type { BatchGeometry, Detections, ImageTargets } from './retinanet.js';

/** Everything that defines a Faster R-CNN (torchvision defaults in brackets). */
export interface FasterRCNNOptions {
  /** Object classes, without background. */
  numClasses: number;
  backbone: BackboneOptions;
  /** FPN width [256]. */
  fpnChannels?: number;
  /** Box head FC width [1024]. */
  representationSize?: number;
  /** Anchor size per level P2..P6 [32, 64, 128, 256, 512]. */
  anchorSizes?: number[];
  aspectRatios?: number[];
  /** RPN proposals kept per level before NMS [train 2000, test 1000] and in total after [2000, 1000]. */
  rpnPreNmsTopN?: { train: number; test: number };
  rpnPostNmsTopN?: { train: number; test: number };
  /** RPN NMS IoU [0.7], matcher thresholds [0.7 / 0.3], sampled anchors [256] at positive fraction [0.5]. */
  rpnNmsThreshold?: number;
  rpnFgIouThreshold?: number;
  rpnBgIouThreshold?: number;
  rpnBatchSizePerImage?: number;
  rpnPositiveFraction?: number;
  /** RoI head matcher thresholds [0.5 / 0.5], sampled RoIs [512] at positive fraction [0.25]. */
  boxFgIouThreshold?: number;
  boxBgIouThreshold?: number;
  boxBatchSizePerImage?: number;
  boxPositiveFraction?: number;
  /** Inference: score threshold [0.05], NMS IoU [0.5], detections per image [100]. */
  boxScoreThreshold?: number;
  boxNmsThreshold?: number;
  boxDetectionsPerImage?: number;
  /** Frozen BatchNorm (pretrained backbone) [true]. */
  freezeBatchNorm?: boolean;
  seed?: number;
}

type Resolved = Required<FasterRCNNOptions>;

/** torchvision's defaults for everything not given. */
export function resolveFasterRCNNOptions(o: FasterRCNNOptions): Resolved {
  if (!Number.isInteger(o.numClasses) || o.numClasses < 1) throw new Error(`FasterRCNN: numClasses must be a positive integer, got ${o.numClasses}`);
  return {
    fpnChannels: 256,
    representationSize: 1024,
    anchorSizes: [32, 64, 128, 256, 512],
    aspectRatios: [...DEFAULT_ASPECT_RATIOS],
    rpnPreNmsTopN: { train: 2000, test: 1000 },
    rpnPostNmsTopN: { train: 2000, test: 1000 },
    rpnNmsThreshold: 0.7,
    rpnFgIouThreshold: 0.7,
    rpnBgIouThreshold: 0.3,
    rpnBatchSizePerImage: 256,
    rpnPositiveFraction: 0.5,
    boxFgIouThreshold: 0.5,
    boxBgIouThreshold: 0.5,
    boxBatchSizePerImage: 512,
    boxPositiveFraction: 0.25,
    boxScoreThreshold: 0.05,
    boxNmsThreshold: 0.5,
    boxDetectionsPerImage: 100,
    freezeBatchNorm: true,
    seed: 0,
    ...o,
  };
}

const normal = (seed: number, stddev = 0.01) => tf.initializers.randomNormal({ mean: 0, stddev, seed });

/** Builds `image -> [P2, P3, P4, P5, pool, objectness P2..pool, deltas P2..pool]`. */
export function buildFasterRCNNNetwork(options: FasterRCNNOptions, backbone?: tf.LayersModel): tf.LayersModel {
  const o = resolveFasterRCNNOptions(options);
  const body = backbone ?? createBackbone(o.backbone);
  if (o.freezeBatchNorm) for (const l of body.layers) if (l.getClassName() === 'BatchNormalization') l.trainable = false;
  const size = o.backbone.inputSize;
  const input = tf.input({ shape: [size?.[0] ?? null, size?.[1] ?? null, 3] as number[], name: 'images' });
  const feats = fpnP2P6(body.apply(input) as tf.SymbolicTensor[], o.fpnChannels, o.seed);
  const A = o.aspectRatios.length;
  // torchvision RPNHead: shared 3x3 conv + ReLU, 1x1 objectness and deltas, N(0, 0.01) init.
  const conv = tf.layers.conv2d({ filters: o.fpnChannels, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: normal(o.seed + 300), name: 'rpn_conv' });
  const cls = tf.layers.conv2d({ filters: A, kernelSize: 1, kernelInitializer: normal(o.seed + 301), name: 'rpn_cls_logits' });
  const box = tf.layers.conv2d({ filters: 4 * A, kernelSize: 1, kernelInitializer: normal(o.seed + 302), name: 'rpn_bbox_pred' });
  const hidden = feats.map((f) => conv.apply(f) as tf.SymbolicTensor);
  return tf.model({
    inputs: input,
    outputs: [...feats, ...hidden.map((h) => cls.apply(h) as tf.SymbolicTensor), ...hidden.map((h) => box.apply(h) as tf.SymbolicTensor)],
    name: 'fasterrcnn',
  });
}

/** torchvision `TwoMLPHead` + `FastRCNNPredictor`: `[K, 7, 7, C] -> [class logits (K+1), deltas 4(K+1)]`. */
export function buildBoxHead(o: Resolved): tf.LayersModel {
  // nn.Linear's default init, uniform(+-1/sqrt(fan_in)), as torchvision leaves these layers
  const torchLinear = (seed: number) => tf.initializers.varianceScaling({ scale: 1 / 3, mode: 'fanIn', distribution: 'uniform', seed });
  const input = tf.input({ shape: [7, 7, o.fpnChannels], name: 'roi_features' });
  let x = tf.layers.flatten({ name: 'box_flatten' }).apply(input) as tf.SymbolicTensor;
  const dense = (units: number, name: string, seed: number, activation?: 'relu') =>
    tf.layers.dense({ units, activation, kernelInitializer: torchLinear(o.seed + seed), name });
  x = dense(o.representationSize, 'box_head_fc6', 400, 'relu').apply(x) as tf.SymbolicTensor;
  x = dense(o.representationSize, 'box_head_fc7', 401, 'relu').apply(x) as tf.SymbolicTensor;
  const cls = dense(o.numClasses + 1, 'box_predictor_cls_score', 402).apply(x) as tf.SymbolicTensor;
  const box = dense(4 * (o.numClasses + 1), 'box_predictor_bbox_pred', 403).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: [cls, box], name: 'fasterrcnn_box_head' });
}

interface Proposals {
  /** `[P * 4]` xyxy in the padded-image frame, per image. */
  boxes: Float32Array[];
}

/** Faster R-CNN: network, box head, anchors, proposal selection, target sampling, losses and decoding. */
export class FasterRCNN {
  readonly options: Resolved;
  readonly anchorGenerator: AnchorGenerator;
  readonly rpnCoder = new BoxCoder([1, 1, 1, 1]);
  readonly boxCoder = new BoxCoder([10, 10, 5, 5]);
  readonly rpnMatcher: Matcher;
  readonly boxMatcher: Matcher;
  private rng: Rng;

  constructor(
    readonly model: tf.LayersModel,
    readonly boxHead: tf.LayersModel,
    options: FasterRCNNOptions,
  ) {
    this.options = resolveFasterRCNNOptions(options);
    const o = this.options;
    this.anchorGenerator = new AnchorGenerator(
      o.anchorSizes.map((s) => [s]),
      [o.aspectRatios],
    );
    this.rpnMatcher = new Matcher({ highThreshold: o.rpnFgIouThreshold, lowThreshold: o.rpnBgIouThreshold, allowLowQualityMatches: true });
    this.boxMatcher = new Matcher({ highThreshold: o.boxFgIouThreshold, lowThreshold: o.boxBgIouThreshold });
    this.rng = new Rng(o.seed);
    if (model.outputs.length !== 15) throw new Error(`FasterRCNN: the network must have 15 outputs, got ${model.outputs.length}`);
  }

  static create(options: FasterRCNNOptions, backbone?: tf.LayersModel): FasterRCNN {
    const o = resolveFasterRCNNOptions(options);
    return new FasterRCNN(buildFasterRCNNNetwork(o, backbone), buildBoxHead(o), o);
  }

  /** The same detector around another network (refocused / fused); the box head is shared. */
  withModel(model: tf.LayersModel): FasterRCNN {
    return new FasterRCNN(model, this.boxHead, this.options);
  }

  /** Runs the network: pyramid features and flattened RPN outputs (`[B, T]`, `[B, T, 4]`). */
  private runNetwork(images: tf.Tensor4D, training: boolean): { feats: tf.Tensor4D[]; grids: GridSize[]; objectness: tf.Tensor2D; deltas: tf.Tensor3D } {
    const [B] = images.shape;
    let grids: GridSize[] = [];
    const r = tf.tidy(() => {
      const outs = this.model.apply(images, { training: training && !this.options.freezeBatchNorm }) as tf.Tensor4D[];
      grids = outs.slice(0, 5).map((f) => [f.shape[1], f.shape[2]] as GridSize);
      return {
        feats: outs.slice(0, 5),
        objectness: tf.concat(outs.slice(5, 10).map((t) => t.reshape([B, -1])), 1),
        deltas: tf.concat(outs.slice(10).map((t) => t.reshape([B, -1, 4])), 1),
      };
    });
    return { feats: r.feats, grids, objectness: r.objectness as tf.Tensor2D, deltas: r.deltas as tf.Tensor3D };
  }

  /**
   * torchvision `RegionProposalNetwork.filter_proposals`: per level top-k by objectness, decode,
   * clip, drop tiny boxes, NMS per level, keep the best `postNmsTopN` per image. No gradient.
   */
  proposals(objectness: Float32Array, deltas: tf.Tensor3D, anchors: tf.Tensor2D, levelSizes: number[], geometry: BatchGeometry, training: boolean): Proposals {
    const o = this.options;
    const pre = training ? o.rpnPreNmsTopN.train : o.rpnPreNmsTopN.test;
    const post = training ? o.rpnPostNmsTopN.train : o.rpnPostNmsTopN.test;
    const T = levelSizes.reduce((a, b) => a + b, 0);
    const boxes: Float32Array[] = [];
    geometry.resized.forEach(([h, w], b) => {
      const idx: number[] = [];
      const lvl: number[] = [];
      let start = 0;
      levelSizes.forEach((n, l) => {
        const order = Array.from({ length: n }, (_, i) => start + i).sort((x, y) => objectness[b * T + y]! - objectness[b * T + x]! || x - y);
        for (const i of order.slice(0, pre)) (idx.push(i), lvl.push(l));
        start += n;
      });
      const decoded = tf.tidy(() => {
        const i = tf.tensor1d(Int32Array.from(idx), 'int32');
        const d = tf.gather(deltas.slice([b, 0, 0], [1, T, 4]).reshape([T, 4]), i) as tf.Tensor2D;
        return this.rpnCoder.decode(d, tf.gather(anchors, i) as tf.Tensor2D).dataSync() as Float32Array;
      });
      const keep: number[] = [];
      for (let k = 0; k < idx.length; k++) {
        decoded[4 * k] = Math.min(Math.max(decoded[4 * k]!, 0), w);
        decoded[4 * k + 1] = Math.min(Math.max(decoded[4 * k + 1]!, 0), h);
        decoded[4 * k + 2] = Math.min(Math.max(decoded[4 * k + 2]!, 0), w);
        decoded[4 * k + 3] = Math.min(Math.max(decoded[4 * k + 3]!, 0), h);
        if (decoded[4 * k + 2]! - decoded[4 * k]! >= 1e-3 && decoded[4 * k + 3]! - decoded[4 * k + 1]! >= 1e-3) keep.push(k);
      }
      const sub = new Float32Array(keep.length * 4);
      keep.forEach((k, j) => sub.set(decoded.subarray(4 * k, 4 * k + 4), 4 * j));
      const scores = keep.map((k) => objectness[b * T + idx[k]!]!);
      const kept = batchedNms(sub, scores, keep.map((k) => lvl[k]!), o.rpnNmsThreshold).slice(0, post);
      const out = new Float32Array(kept.length * 4);
      kept.forEach((k, j) => out.set(sub.subarray(4 * k, 4 * k + 4), 4 * j));
      boxes.push(out);
    });
    return { boxes };
  }

  private anchorsFor(geometry: BatchGeometry, grids: GridSize[]): { anchors: Float32Array; tensor: tf.Tensor2D; levelSizes: number[] } {
    const anchors = this.anchorGenerator.generate(geometry.padded, grids);
    const A = this.options.aspectRatios.length;
    return { anchors, tensor: tf.tensor2d(anchors, [anchors.length / 4, 4]), levelSizes: grids.map(([h, w]) => h * w * A) };
  }

  /** MultiScaleRoIAlign over P2..P5: each box pooled (7x7, sampling 2) from its FPN level. */
  roiPool(feats: tf.Tensor4D[], boxesPerImage: Float32Array[], padded: [number, number]): tf.Tensor4D {
    const all = boxesPerImage.flatMap((b, img) => Array.from({ length: b.length / 4 }, (_, i) => [img, ...Array.from(b.subarray(4 * i, 4 * i + 4))]));
    const levels = assignFpnLevels(all.flatMap((r) => r.slice(1)), 2, 5);
    const pieces: tf.Tensor4D[] = [];
    const order: number[] = [];
    for (let l = 2; l <= 5; l++) {
      const members = all.map((_, i) => i).filter((i) => levels[i] === l);
      if (members.length === 0) continue;
      const f = feats[l - 2]!;
      // scale inferred from the map size as torchvision's `infer_scale`: 2^round(log2(map / image))
      const scale = 2 ** Math.round(Math.log2(f.shape[1] / padded[0]));
      pieces.push(roiAlign(f, members.flatMap((i) => all[i]!), { outputSize: [7, 7], spatialScale: scale, samplingRatio: 2 }));
      order.push(...members);
    }
    const inverse = new Int32Array(order.length);
    order.forEach((orig, pos) => (inverse[orig] = pos));
    return tf.tidy(() => tf.gather(tf.concat(pieces, 0), tf.tensor1d(inverse, 'int32')) as tf.Tensor4D);
  }

  /**
   * torchvision's four training losses for a batch (targets in the resized frame, labels 0..K-1).
   * Call inside `tf.variableGrads` / `tf.tidy`, which free the intermediate tensors.
   */
  losses(images: tf.Tensor4D, targets: ImageTargets[], geometry: BatchGeometry): Record<string, tf.Scalar> {
    const o = this.options;
    const net = this.runNetwork(images, true);
    const { anchors, tensor: anchorT, levelSizes } = this.anchorsFor(geometry, net.grids);
    const objectness = net.objectness.dataSync() as Float32Array;
    const props = this.proposals(objectness, net.deltas, anchorT, levelSizes, geometry, true);
    // RPN targets: matched anchors, 256 sampled per image.
    const T = anchors.length / 4;
    const rpnRows: number[] = [];
    const rpnLabels: number[] = [];
    const rpnPosRows: number[] = [];
    const rpnPosGt: number[] = [];
    targets.forEach((t, b) => {
      const G = t.labels.length;
      const matches = G === 0 ? new Int32Array(T).fill(BELOW_LOW_THRESHOLD) : this.rpnMatcher.match(boxIouHost(t.boxes, anchors), G, T);
      const labels = Array.from(matches, (m) => (m >= 0 ? 1 : m === BETWEEN_THRESHOLDS ? -1 : 0));
      const s = samplePositiveNegative(labels, o.rpnBatchSizePerImage, o.rpnPositiveFraction, this.rng);
      for (const p of s.positive) (rpnRows.push(b * T + p), rpnLabels.push(1), rpnPosRows.push(b * T + p), rpnPosGt.push(...t.boxes.subarray(4 * matches[p]!, 4 * matches[p]! + 4)));
      for (const n of s.negative) (rpnRows.push(b * T + n), rpnLabels.push(0));
    });
    // RoI targets: proposals + gt, matched, 512 sampled per image.
    const roiBoxes: Float32Array[] = [];
    const roiLabels: number[] = [];
    const roiTargets: number[] = [];
    const roiRef: number[] = [];
    targets.forEach((t, b) => {
      const cand = new Float32Array(props.boxes[b]!.length + t.boxes.length);
      cand.set(props.boxes[b]!);
      cand.set(t.boxes, props.boxes[b]!.length);
      const N = cand.length / 4;
      const G = t.labels.length;
      const matches = G === 0 ? new Int32Array(N).fill(BELOW_LOW_THRESHOLD) : this.boxMatcher.match(boxIouHost(t.boxes, cand), G, N);
      const labels = Array.from(matches, (m) => (m >= 0 ? t.labels[m]! + 1 : m === BETWEEN_THRESHOLDS ? -1 : 0));
      const s = samplePositiveNegative(labels, o.boxBatchSizePerImage, o.boxPositiveFraction, this.rng);
      const chosen = [...s.positive, ...s.negative];
      const boxes = new Float32Array(chosen.length * 4);
      chosen.forEach((c, j) => {
        boxes.set(cand.subarray(4 * c, 4 * c + 4), 4 * j);
        roiLabels.push(labels[c]!);
        const g = Math.max(matches[c]!, 0);
        roiTargets.push(...(G ? t.boxes.subarray(4 * g, 4 * g + 4) : [0, 0, 1, 1]));
        roiRef.push(...cand.subarray(4 * c, 4 * c + 4));
      });
      roiBoxes.push(boxes);
    });
    {
      // No tidy/dispose here: the caller's gradient scope (tf.variableGrads) owns these tensors.
      {
        const rows = tf.tensor1d(Int32Array.from(rpnRows), 'int32');
        const objLogits = tf.gather(net.objectness.reshape([-1]), rows);
        const rpnObjectness = binaryCrossEntropyWithLogits(objLogits, tf.tensor1d(rpnLabels)).mean() as tf.Scalar;
        let rpnBox = tf.scalar(0);
        if (rpnPosRows.length) {
          const pred = tf.gather(net.deltas.reshape([-1, 4]), tf.tensor1d(Int32Array.from(rpnPosRows), 'int32')) as tf.Tensor2D;
          const anchorsPos = tf.gather(anchorT, tf.tensor1d(Int32Array.from(rpnPosRows.map((r) => r % T)), 'int32')) as tf.Tensor2D;
          const target = this.rpnCoder.encode(tf.tensor2d(rpnPosGt, [rpnPosRows.length, 4]), anchorsPos);
          rpnBox = smoothL1Loss(pred, target, { beta: 1 / 9, reduction: 'sum' }).div(Math.max(1, rpnRows.length)) as tf.Scalar;
        }
        const pooled = this.roiPool(net.feats.slice(0, 4), roiBoxes, geometry.padded);
        const [clsLogits, boxDeltas] = this.boxHead.apply(pooled) as tf.Tensor2D[];
        const R = roiLabels.length;
        const labelT = tf.tensor1d(Int32Array.from(roiLabels), 'int32');
        const classifier = tf.losses.softmaxCrossEntropy(tf.oneHot(labelT, o.numClasses + 1), clsLogits!) as tf.Scalar;
        const pos = roiLabels.map((l, i) => (l > 0 ? i : -1)).filter((i) => i >= 0);
        let boxReg = tf.scalar(0);
        if (pos.length) {
          // the deltas of each positive RoI's own class: rows i*(K+1) + label of [R*(K+1), 4]
          const rowsPos = tf.tensor1d(Int32Array.from(pos.map((i) => i * (o.numClasses + 1) + roiLabels[i]!)), 'int32');
          const pred = tf.gather(boxDeltas!.reshape([R * (o.numClasses + 1), 4]), rowsPos) as tf.Tensor2D;
          const posIdx = tf.tensor1d(Int32Array.from(pos), 'int32');
          const target = this.boxCoder.encode(tf.gather(tf.tensor2d(roiTargets, [R, 4]), posIdx) as tf.Tensor2D, tf.gather(tf.tensor2d(roiRef, [R, 4]), posIdx) as tf.Tensor2D);
          boxReg = smoothL1Loss(pred, target, { beta: 1 / 9, reduction: 'sum' }).div(R) as tf.Scalar;
        }
        return { loss_objectness: rpnObjectness, loss_rpn_box_reg: rpnBox, loss_classifier: classifier, loss_box_reg: boxReg };
      }
    }
  }

  /** Inference: proposals, RoI heads, per-class decoding, score threshold, per-class NMS, top detections. */
  detect(images: tf.Tensor4D, geometry: BatchGeometry): Detections[] {
    const o = this.options;
    const K1 = o.numClasses + 1;
    const net = this.runNetwork(images, false);
    const { tensor: anchorT, levelSizes } = this.anchorsFor(geometry, net.grids);
    try {
      const props = this.proposals(net.objectness.dataSync() as Float32Array, net.deltas, anchorT, levelSizes, geometry, false);
      return props.boxes.map((boxes, b) => {
        const R = boxes.length / 4;
        if (R === 0) return { boxes: new Float32Array(0), scores: new Float32Array(0), labels: new Int32Array(0) };
        const [probs, decoded] = tf.tidy(() => {
          const pooled = this.roiPool(net.feats.slice(0, 4).map((f) => f.slice([b, 0, 0, 0], [1, -1, -1, -1])), [boxes], geometry.padded);
          const [logits, deltas] = this.boxHead.apply(pooled) as tf.Tensor2D[];
          const ref = tf.tile(tf.tensor2d(boxes, [R, 4]), [1, K1]).reshape([R * K1, 4]) as tf.Tensor2D;
          return [tf.softmax(logits!).dataSync(), this.boxCoder.decode(deltas!.reshape([R * K1, 4]) as tf.Tensor2D, ref).dataSync()];
        });
        return this.postprocess(probs as Float32Array, decoded as Float32Array, R, geometry.resized[b]!, geometry.original[b]!);
      });
    } finally {
      tf.dispose([...net.feats, net.objectness, net.deltas, anchorT]);
    }
  }

  private postprocess(probs: Float32Array, boxes: Float32Array, R: number, [h, w]: [number, number], original: [number, number]): Detections {
    const o = this.options;
    const K1 = o.numClasses + 1;
    const cand: number[] = [];
    for (let r = 0; r < R; r++) {
      for (let c = 1; c < K1; c++) {
        const i = r * K1 + c;
        boxes[4 * i] = Math.min(Math.max(boxes[4 * i]!, 0), w);
        boxes[4 * i + 1] = Math.min(Math.max(boxes[4 * i + 1]!, 0), h);
        boxes[4 * i + 2] = Math.min(Math.max(boxes[4 * i + 2]!, 0), w);
        boxes[4 * i + 3] = Math.min(Math.max(boxes[4 * i + 3]!, 0), h);
        const big = boxes[4 * i + 2]! - boxes[4 * i]! >= 1e-2 && boxes[4 * i + 3]! - boxes[4 * i + 1]! >= 1e-2;
        if (probs[i]! > o.boxScoreThreshold && big) cand.push(i);
      }
    }
    const sub = new Float32Array(cand.length * 4);
    cand.forEach((i, j) => sub.set(boxes.subarray(4 * i, 4 * i + 4), 4 * j));
    const scores = cand.map((i) => probs[i]!);
    const labels = cand.map((i) => (i % K1) - 1);
    const keep = batchedNms(sub, scores, labels, o.boxNmsThreshold).slice(0, o.boxDetectionsPerImage);
    const sx = original[1] / w;
    const sy = original[0] / h;
    return {
      boxes: Float32Array.from(keep.flatMap((k) => [sub[4 * k]! * sx, sub[4 * k + 1]! * sy, sub[4 * k + 2]! * sx, sub[4 * k + 3]! * sy])),
      scores: Float32Array.from(keep, (k) => scores[k]!),
      labels: Int32Array.from(keep, (k) => labels[k]!),
    };
  }

  /** Sub-models holding weights (saved in checkpoints). */
  parts(): tf.LayersModel[] {
    return [this.model, this.boxHead];
  }

  /** Trainable variables of both parts. */
  trainableWeights(): tf.LayerVariable[] {
    return [...this.model.trainableWeights, ...this.boxHead.trainableWeights];
  }
}
