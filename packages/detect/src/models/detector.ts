/**
 * What the training loop, evaluation and CLIs need from a detector (RetinaNet or Faster R-CNN),
 * and the types every detector shares. Box format everywhere: xyxy pixels.
 */
import type * as tf from '@tensorflow/tfjs';

/** Detections for one image, in original-image pixels. */
export interface Detections {
  /** `[N * 4]` xyxy. */
  boxes: Float32Array;
  /** `[N]`, decreasing. */
  scores: Float32Array;
  /** `[N]` contiguous labels. */
  labels: Int32Array;
}

/** Ground truth of one image in the (resized) network-input frame. */
export interface ImageTargets {
  /** `[G * 4]` xyxy. */
  boxes: Float32Array;
  /** `[G]` contiguous labels. */
  labels: Int32Array;
}

/** Image sizes in a batch: the padded tensor size `[H, W]` and, per image, the resized and the original `[h, w]`. */
export interface BatchGeometry {
  padded: [number, number];
  resized: [number, number][];
  original: [number, number][];
}

/** A detector: a main network (the part `refocus`/`fuse` rewrite) plus losses and decoding. */
export interface Detector {
  /** The network that holds the backbone. */
  readonly model: tf.LayersModel;
  /** Training losses of a batch by name; call inside a gradient scope. */
  losses(images: tf.Tensor4D, targets: ImageTargets[], geometry: BatchGeometry): Record<string, tf.Scalar>;
  /** Detections per image, in original-image pixels. */
  detect(images: tf.Tensor4D, geometry: BatchGeometry): Detections[];
  /** The same detector around another main network (refocused / fused). */
  withModel(model: tf.LayersModel): Detector;
  /** Variables the optimizer updates. */
  trainableWeights(): tf.LayerVariable[];
  /** Sub-models whose weights a checkpoint holds (names must be unique across them). */
  parts(): tf.LayersModel[];
  /**
   * What runs {@link Detector.model} outside training: a compiled model (`compileForInference`
   * from @refconv/core, same outputs in the same order), or undefined for the model itself.
   */
  inference?: { predict(x: tf.Tensor): tf.Tensor | tf.Tensor[] };
}
