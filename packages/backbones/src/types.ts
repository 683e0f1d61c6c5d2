/** Types shared by the backbone families and the registry. */
import type * as tf from '@tensorflow/tfjs';

/** Options of `createModel`. Every field has a per-architecture default. */
export interface CreateModelOptions {
  /** Classifier outputs (ignored with `features: true`). Default 1000 (10 for the CIFAR variants). */
  numClasses?: number;
  /** Input height/width in pixels: one number or [height, width]. Default 224 (32 for the CIFAR variants). */
  inputSize?: number | [number, number];
  /** Input channels, e.g. 1 for Fashion-MNIST. Default 3. */
  inChannels?: number;
  /**
   * Width multiplier. MobileNets: torchvision's `width_mult` (channels rounded with
   * `_make_divisible(c * width, 8)`; MobileNetV1: `int(c * width)` as Keras' alpha).
   * ResNets: scales every stage (base width 64 * width, 16 * width for the CIFAR ResNets).
   * Not supported by ShuffleNetV2 (pick x0_5 / x1_0). Default 1.
   */
  width?: number;
  /**
   * Return the multi-scale features instead of logits: outputs C2, C3, C4, C5 (nominal strides
   * 4, 8, 16, 32; for the small-input variants, the output of each stage). No classifier is built.
   */
  features?: boolean;
  /**
   * 32 (default), 16 or 8: the last stage(s) keep their resolution and use dilation instead of
   * stride (DeepLab style); parameter names and shapes do not change.
   */
  outputStride?: 8 | 16 | 32;
  /** Classifier dropout probability (default: torchvision's, 0.2 for MobileNets, none for ResNets). */
  dropout?: number;
}

/** Options after defaults are applied. */
export interface ResolvedOptions {
  numClasses: number;
  inputSize: [number, number];
  inChannels: number;
  width: number;
  features: boolean;
  outputStride: 8 | 16 | 32;
  dropout: number | undefined;
}

/** One feature map a backbone exposes. */
export interface FeatureTap {
  /** The tensor (output of the named layer). */
  tensor: tf.SymbolicTensor;
  /** Nominal reduction (4, 8, 16, 32) before any stride-to-dilation replacement. */
  nominalStride: number;
}

/** What a family builder returns. */
export interface BuildResult {
  /** Feature maps in increasing stride (C2..C5 for ImageNet backbones). */
  taps: FeatureTap[];
  /** Logits, when `features` is false. */
  logits?: tf.SymbolicTensor;
}

/** A registered architecture. */
export interface ModelEntry {
  /** Name passed to `createModel`, torchvision's where one exists (`resnet50`, `mobilenet_v3_large`). */
  name: string;
  /** Family (one source file each). */
  family: 'resnet' | 'cifar_resnet' | 'mobilenet_v1' | 'mobilenet_v2' | 'mobilenet_v3' | 'shufflenet_v2';
  /** One line for listings. */
  description: string;
  /** Defaults for this architecture. */
  defaults: { numClasses: number; inputSize: number };
  /**
   * Name of the final Linear layer (its PyTorch module path): the layer to leave out when
   * fine-tuning on a new number of classes, e.g. `skip: (k) => k.startsWith(\`${classifier}.\`)`.
   */
  classifier: string;
  /** Whether `outputStride` 16 / 8 is supported. */
  dilatable: boolean;
  /** Builds the network on `input`. */
  build(input: tf.SymbolicTensor, opts: ResolvedOptions): BuildResult;
}
