/**
 * tf.layers Conv2D with a linear activation and no dilation runs, while gradients are being
 * recorded, as a plain `conv2d` (+ bias add) instead of tfjs' fused conv: the fused conv's
 * gradient is a custom gradient that always computes the input gradient, even where nothing needs
 * it (the stem conv of every network: ~270 ms of a 5 s ResNet-18 step at 224 px, batch 32); the
 * plain conv's registered gradient is only evaluated for inputs on the path to a trainable variable.
 */
import * as tf from '@tensorflow/tfjs';

type LayerCall = (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor;
let convCallPatched = false;

/** The fields of a tf.layers Conv2D that its call reads (not in tfjs' public typings). */
interface ConvLike {
  rank: number;
  dataFormat: string;
  padding: 'same' | 'valid';
  strides: [number, number];
  dilationRate: [number, number];
  activation: { getClassName(): string };
  kernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
}

function conv2dLayerProto(): { call: LayerCall } {
  return Object.getPrototypeOf(tf.layers.conv2d({ filters: 1, kernelSize: 1 })) as { call: LayerCall };
}

/** Whether a gradient tape is recording (inside tf.grad / optimizer.minimize). */
function recordingGradients(): boolean {
  return (tf.engine().state as unknown as { gradientDepth: number }).gradientDepth > 0;
}

export function patchConvLayer(): void {
  if (convCallPatched) return;
  const proto = conv2dLayerProto();
  const inherited = proto.call;
  proto.call = function patchedConvCall(this: ConvLike, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) {
    const plain = recordingGradients() && this.rank === 2 && this.dataFormat === 'channelsLast' && this.activation.getClassName() === 'linear'
      && this.dilationRate.every((d) => d === 1);
    if (!plain) return inherited.call(this as never, inputs, kwargs);
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    return tf.tidy(() => {
      const y = tf.conv2d(x, this.kernel.read() as tf.Tensor4D, this.strides, this.padding, 'NHWC');
      return this.bias ? tf.add(y, this.bias.read()) : y;
    });
  };
  convCallPatched = true;
}

export function restoreConvLayer(): void {
  if (!convCallPatched) return;
  // Conv2D inherits call from tfjs-layers' Conv; removing the own property restores it.
  delete (conv2dLayerProto() as { call?: LayerCall }).call;
  convCallPatched = false;
}
