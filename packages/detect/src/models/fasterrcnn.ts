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
import { Matcher } from '../ops/matcher.js';
import { assignFpnLevels, roiAlign } from '../ops/roi-align.js';
import { createBackbone, type BackboneOptions } from './backbone.js';
import { fpnP2P6 } from './fpn.js';
import { fastRcnnLoss, postprocessDetections, selectTrainingSamples } from './roi-heads.js';
import { filterProposals, rpnLoss, sampleRpnTargets } from './rpn.js';
import type { BatchGeometry, Detections, ImageTargets } from './detector.js';

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

/** Faster R-CNN: network, box head, anchors, proposal selection, target sampling, losses and decoding. */
/**
 * The parts a Faster R-CNN is assembled from besides its networks (torchvision's
 * `rpn_anchor_generator`, box coders, `proposal_matcher`s); each defaults to torchvision's.
 */
export interface FasterRCNNParts {
  /** RPN anchors; default: one size per level (`anchorSizes`) x `aspectRatios`. */
  anchorGenerator?: AnchorGenerator;
  /** RPN box coder; default weights (1, 1, 1, 1). */
  rpnCoder?: BoxCoder;
  /** Box head coder; default weights (10, 10, 5, 5). */
  boxCoder?: BoxCoder;
  /** RPN anchor matcher; default the RPN IoU thresholds, low-quality matches allowed. */
  rpnMatcher?: Matcher;
  /** Proposal matcher of the box head; default the box IoU thresholds. */
  boxMatcher?: Matcher;
}

export class FasterRCNN {
  readonly options: Resolved;
  readonly anchorGenerator: AnchorGenerator;
  readonly rpnCoder: BoxCoder;
  readonly boxCoder: BoxCoder;
  readonly rpnMatcher: Matcher;
  readonly boxMatcher: Matcher;
  private rng: Rng;
  /** Runs the network outside training when set (see Detector.inference). */
  inference?: { predict(x: tf.Tensor): tf.Tensor | tf.Tensor[] };

  /**
   * @param model the backbone + FPN + RPN network, `boxHead` the RoI box head
   * @param parts injected anchor generator, coders and matchers (defaults from `options`)
   */
  constructor(
    readonly model: tf.LayersModel,
    readonly boxHead: tf.LayersModel,
    options: FasterRCNNOptions,
    parts: FasterRCNNParts = {},
  ) {
    this.options = resolveFasterRCNNOptions(options);
    const o = this.options;
    this.anchorGenerator = parts.anchorGenerator ?? new AnchorGenerator(o.anchorSizes.map((s) => [s]), [o.aspectRatios]);
    this.rpnCoder = parts.rpnCoder ?? new BoxCoder([1, 1, 1, 1]);
    this.boxCoder = parts.boxCoder ?? new BoxCoder([10, 10, 5, 5]);
    this.rpnMatcher = parts.rpnMatcher ?? new Matcher({ highThreshold: o.rpnFgIouThreshold, lowThreshold: o.rpnBgIouThreshold, allowLowQualityMatches: true });
    this.boxMatcher = parts.boxMatcher ?? new Matcher({ highThreshold: o.boxFgIouThreshold, lowThreshold: o.boxBgIouThreshold });
    this.rng = new Rng(o.seed);
    if (model.outputs.length !== 15) throw new Error(`FasterRCNN: the network must have 15 outputs, got ${model.outputs.length}`);
  }

  static create(options: FasterRCNNOptions, backbone?: tf.LayersModel, parts: FasterRCNNParts = {}): FasterRCNN {
    const o = resolveFasterRCNNOptions(options);
    return new FasterRCNN(buildFasterRCNNNetwork(o, backbone), buildBoxHead(o), o, parts);
  }

  /** The same detector (same parts) around another network (refocused / fused); the box head is shared. */
  withModel(model: tf.LayersModel): FasterRCNN {
    const { anchorGenerator, rpnCoder, boxCoder, rpnMatcher, boxMatcher } = this;
    return new FasterRCNN(model, this.boxHead, this.options, { anchorGenerator, rpnCoder, boxCoder, rpnMatcher, boxMatcher });
  }

  /** Runs the network: pyramid features and flattened RPN outputs (`[B, T]`, `[B, T, 4]`). */
  private runNetwork(images: tf.Tensor4D, training: boolean): { feats: tf.Tensor4D[]; grids: GridSize[]; objectness: tf.Tensor2D; deltas: tf.Tensor3D } {
    const [B] = images.shape;
    let grids: GridSize[] = [];
    const r = tf.tidy(() => {
      const outs = (!training && this.inference
        ? this.inference.predict(images)
        : this.model.apply(images, { training: training && !this.options.freezeBatchNorm })) as tf.Tensor4D[];
      grids = outs.slice(0, 5).map((f) => [f.shape[1], f.shape[2]] as GridSize);
      return {
        feats: outs.slice(0, 5),
        objectness: tf.concat(outs.slice(5, 10).map((t) => t.reshape([B, -1])), 1),
        deltas: tf.concat(outs.slice(10).map((t) => t.reshape([B, -1, 4])), 1),
      };
    });
    return { feats: r.feats, grids, objectness: r.objectness as tf.Tensor2D, deltas: r.deltas as tf.Tensor3D };
  }

  /** Proposals per image (`[P * 4]` xyxy, padded-image frame) from the RPN outputs; see {@link filterProposals}. */
  proposals(objectness: ArrayLike<number>, deltas: tf.Tensor3D, anchors: tf.Tensor2D, levelSizes: number[], geometry: BatchGeometry, training: boolean): Float32Array[] {
    const o = this.options;
    return filterProposals(objectness, deltas, anchors, levelSizes, geometry.resized, this.rpnCoder, {
      preNmsTopN: training ? o.rpnPreNmsTopN.train : o.rpnPreNmsTopN.test,
      postNmsTopN: training ? o.rpnPostNmsTopN.train : o.rpnPostNmsTopN.test,
      nmsThreshold: o.rpnNmsThreshold,
    });
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
    const props = this.proposals(net.objectness.dataSync() as Float32Array, net.deltas, anchorT, levelSizes, geometry, true);
    const rpnSamples = sampleRpnTargets(anchors, targets, this.rpnMatcher, o.rpnBatchSizePerImage, o.rpnPositiveFraction, this.rng);
    const roiSamples = selectTrainingSamples(props, targets, this.boxMatcher, this.boxCoder, o.boxBatchSizePerImage, o.boxPositiveFraction, this.rng);
    // No tidy/dispose here: the caller's gradient scope (tf.variableGrads) owns these tensors.
    const rpn = rpnLoss(net.objectness, net.deltas, anchorT, rpnSamples, this.rpnCoder);
    const pooled = this.roiPool(net.feats.slice(0, 4), roiSamples.boxes, geometry.padded);
    const [classLogits, boxRegression] = this.boxHead.apply(pooled) as tf.Tensor2D[];
    return { ...rpn, ...fastRcnnLoss(classLogits!, boxRegression!, roiSamples) };
  }

  /** Inference: proposals, RoI heads, per-class decoding, score threshold, per-class NMS, top detections. */
  detect(images: tf.Tensor4D, geometry: BatchGeometry): Detections[] {
    const o = this.options;
    const net = this.runNetwork(images, false);
    const { tensor: anchorT, levelSizes } = this.anchorsFor(geometry, net.grids);
    try {
      const props = this.proposals(net.objectness.dataSync() as Float32Array, net.deltas, anchorT, levelSizes, geometry, false);
      return props.map((boxes, b) => {
        if (boxes.length === 0) return { boxes: new Float32Array(0), scores: new Float32Array(0), labels: new Int32Array(0) };
        const [logits, deltas] = tf.tidy(() => {
          const pooled = this.roiPool(net.feats.slice(0, 4).map((f) => f.slice([b, 0, 0, 0], [1, -1, -1, -1])), [boxes], geometry.padded);
          return this.boxHead.apply(pooled) as tf.Tensor2D[];
        });
        try {
          return postprocessDetections(logits!, deltas!, boxes, geometry.resized[b]!, geometry.original[b]!, this.boxCoder, {
            scoreThreshold: o.boxScoreThreshold,
            nmsThreshold: o.boxNmsThreshold,
            detectionsPerImage: o.boxDetectionsPerImage,
          });
        } finally {
          tf.dispose([logits!, deltas!]);
        }
      });
    } finally {
      tf.dispose([...net.feats, net.objectness, net.deltas, anchorT]);
    }
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
