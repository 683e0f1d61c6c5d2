/**
 * FLOPs (multiply-accumulates) of a detector network at its built input size. Unlike a per-layer
 * `outputShape` count, this walks every call ("inbound node") of a layer, so heads shared across
 * the five pyramid levels are counted once per level, as torchvision's FLOP counters do.
 */
import * as tf from '@tensorflow/tfjs';

const KERNEL_LAYERS = new Set(['Conv2D', 'DepthwiseConv2D', 'RefConv2D', 'Dense']);

function leafLayers(model: tf.LayersModel): tf.layers.Layer[] {
  return model.layers.flatMap((l) => (l instanceof tf.LayersModel ? leafLayers(l) : [l]));
}

/** Output positions of one call: product of the non-batch, non-channel dims. */
function positions(shape: tf.Shape, where: string): number {
  let n = 1;
  for (const d of shape.slice(1, -1)) {
    if (d === null) throw new Error(`countDetectorFlops: ${where} has an unknown spatial size; build the network with a fixed inputSize`);
    n *= d;
  }
  return n;
}

/** Multiply-accumulates of all conv / dense calls for one image. */
export function countDetectorFlops(model: tf.LayersModel): number {
  let total = 0;
  for (const layer of leafLayers(model)) {
    if (!KERNEL_LAYERS.has(layer.getClassName())) continue;
    const kernel = layer.getWeights()[0];
    if (!kernel) throw new Error(`countDetectorFlops: layer '${layer.name}' has no kernel (is the model built?)`);
    for (const node of layer.inboundNodes) {
      const shapes = node.outputShapes;
      const shape = (Array.isArray(shapes[0]) ? shapes[0] : shapes) as tf.Shape;
      total += positions(shape, `layer '${layer.name}'`) * kernel.size;
    }
  }
  return total;
}
