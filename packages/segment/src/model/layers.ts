/**
 * Parameter-free layers the DeepLab heads need that tfjs-layers lacks, registered for
 * serialization so `refocus` / `fuse` (which rebuild models from their config) keep them.
 */
import * as tf from '@tensorflow/tfjs';

type LayerArgs = ConstructorParameters<typeof tf.layers.Layer>[0];

/** Registration namespace of this package's layers. */
export const SEGMENT_LAYER_PACKAGE = 'refconv-segment';

/**
 * Bilinear resize of `inputs[0]` `[B, h, w, C]` to the spatial size of `inputs[1]`
 * `[B, H, W, *]`, as PyTorch `F.interpolate(mode='bilinear', align_corners=False)`
 * (half-pixel centres). Works for any input size, so one model serves crops and whole images.
 */
export class ResizeBilinearLike extends tf.layers.Layer {
  static className = 'ResizeBilinearLike';

  constructor(args?: LayerArgs) {
    super(args ?? {});
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const [x, ref] = inputShape as tf.Shape[];
    if (!x || !ref) throw new Error(`${this.name}: expects two inputs [x, reference]`);
    return [x[0]!, ref[1]!, ref[2]!, x[3]!];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const [x, ref] = inputs as tf.Tensor4D[];
    if (!x || !ref) throw new Error(`${this.name}: expects two inputs [x, reference]`);
    const size: [number, number] = [ref.shape[1], ref.shape[2]];
    if (x.shape[1] === size[0] && x.shape[2] === size[1]) return x.clone();
    return tf.image.resizeBilinear(x, size, false, true);
  }
}
tf.serialization.registerClass(ResizeBilinearLike, SEGMENT_LAYER_PACKAGE);

/** Global average pooling that keeps the spatial axes: `[B, H, W, C] -> [B, 1, 1, C]`. */
export class GlobalAvgPoolKeepDims extends tf.layers.Layer {
  static className = 'GlobalAvgPoolKeepDims';

  constructor(args?: LayerArgs) {
    super(args ?? {});
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = inputShape as tf.Shape;
    return [s[0]!, 1, 1, s[3]!];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    return tf.mean(x, [1, 2], true);
  }
}
tf.serialization.registerClass(GlobalAvgPoolKeepDims, SEGMENT_LAYER_PACKAGE);
