/** What the training loop, evaluation and CLIs need from a detector (RetinaNet or Faster R-CNN). */
import type * as tf from '@tensorflow/tfjs';
import type { BatchGeometry, Detections, ImageTargets } from './retinanet.js';

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
}
