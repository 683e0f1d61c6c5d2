/** Bookkeeping for output stride: which layers keep their stride and which turn it into dilation. */

/**
 * Tracks the running stride of a network and, once the requested output stride is reached,
 * turns further strides into dilation (DeepLab style). The layer whose stride is removed is
 * itself dilated, as torchvision's MobileNetV3 `dilated=True` does.
 */
export class DilationSchedule {
  /** Reduction actually applied so far. */
  stride = 1;
  /** Nominal reduction (as if no stride had been removed). */
  nominal = 1;
  /** Current dilation. */
  dilation = 1;

  constructor(readonly outputStride: number) {}

  /** Stride and dilation for a layer that nominally has stride `s`. */
  step(s: number): { stride: number; dilation: number } {
    this.nominal *= s;
    if (s > 1 && this.stride * s > this.outputStride) {
      this.dilation *= s;
      return { stride: 1, dilation: this.dilation };
    }
    this.stride *= s;
    return { stride: s, dilation: this.dilation };
  }
}

/**
 * Keeps, for each nominal stride, the last feature map produced at that stride: the usual
 * choice of C2..C5 (torchvision's detection/segmentation backbones take stage outputs).
 */
export class TapCollector<T> {
  private readonly byStride = new Map<number, T>();

  record(nominalStride: number, tensor: T): void {
    this.byStride.set(nominalStride, tensor);
  }

  /** Taps at the given nominal strides, in order; throws naming a missing one. */
  pick(strides: number[], where: string): Array<{ tensor: T; nominalStride: number }> {
    return strides.map((s) => {
      const t = this.byStride.get(s);
      if (t === undefined) throw new Error(`${where}: no feature map at stride ${s} (have ${[...this.byStride.keys()].join(', ')})`);
      return { tensor: t, nominalStride: s };
    });
  }
}
