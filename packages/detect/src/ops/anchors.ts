/**
 * Anchor boxes (torchvision `AnchorGenerator`): for each feature level, a set of
 * "cell anchors" centred at 0 (one per aspect ratio x size, ratio-major), shifted to
 * every grid location (row-major y, then x; anchors innermost), i.e. the same order
 * as flattening an NHWC head output `[N, H, W, A * K]` to `[N, H * W * A, K]`.
 */

/** Sizes per level `(x, x*2^(1/3), x*2^(2/3))` for x in 32..512, as torchvision's RetinaNet. */
export const RETINANET_ANCHOR_SIZES: readonly (readonly number[])[] = [32, 64, 128, 256, 512].map((x) => [
  x,
  Math.trunc(x * 2 ** (1 / 3)),
  Math.trunc(x * 2 ** (2 / 3)),
]);

/** Aspect ratios (h / w) per level, as torchvision's RetinaNet and Faster R-CNN. */
export const DEFAULT_ASPECT_RATIOS: readonly number[] = [0.5, 1.0, 2.0];

/** Rounds half to even, like `torch.round`. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Zero-centred anchors `[A * 4]` xyxy for one level, A = ratios x sizes, ratio-major,
 * rounded to integers like torchvision.
 */
export function cellAnchors(sizes: readonly number[], aspectRatios: readonly number[]): Float32Array {
  const out = new Float32Array(sizes.length * aspectRatios.length * 4);
  let k = 0;
  for (const ratio of aspectRatios) {
    const hRatio = Math.fround(Math.sqrt(ratio));
    const wRatio = Math.fround(1 / hRatio);
    for (const size of sizes) {
      const w = Math.fround(wRatio * size);
      const h = Math.fround(hRatio * size);
      out.set([-w / 2, -h / 2, w / 2, h / 2].map(roundHalfEven), k);
      k += 4;
    }
  }
  return out;
}

/** A feature map's spatial size `[height, width]`. */
export type GridSize = readonly [number, number];

/** Generates anchors for every level of a feature pyramid. */
export class AnchorGenerator {
  private readonly cells: Float32Array[];

  /**
   * @param sizes anchor sizes per level (pixels, square-root of the area)
   * @param aspectRatios aspect ratios per level (one list reused for every level if a single one is given)
   */
  constructor(
    readonly sizes: readonly (readonly number[])[] = RETINANET_ANCHOR_SIZES,
    readonly aspectRatios: readonly (readonly number[])[] = [DEFAULT_ASPECT_RATIOS],
  ) {
    if (aspectRatios.length !== 1 && aspectRatios.length !== sizes.length) {
      throw new Error(`AnchorGenerator: ${sizes.length} size levels but ${aspectRatios.length} aspect-ratio levels`);
    }
    this.cells = sizes.map((s, i) => cellAnchors(s, aspectRatios[aspectRatios.length === 1 ? 0 : i]!));
  }

  /** Anchors per location for each level. */
  numAnchorsPerLocation(): number[] {
    return this.cells.map((c) => c.length / 4);
  }

  /**
   * Anchors for one (padded) image, `[sum(H*W*A) * 4]` xyxy, levels concatenated.
   * The stride of a level is `floor(imageSize / gridSize)` per axis, as torchvision.
   */
  generate(imageSize: GridSize, gridSizes: readonly GridSize[]): Float32Array {
    if (gridSizes.length !== this.cells.length) {
      throw new Error(`AnchorGenerator: ${gridSizes.length} feature maps but anchors configured for ${this.cells.length}`);
    }
    const total = gridSizes.reduce((s, [h, w], i) => s + h * w * this.cells[i]!.length, 0);
    const out = new Float32Array(total);
    let k = 0;
    gridSizes.forEach(([gh, gw], level) => {
      const cell = this.cells[level]!;
      const sy = Math.floor(imageSize[0] / gh);
      const sx = Math.floor(imageSize[1] / gw);
      for (let y = 0; y < gh; y++) {
        for (let x = 0; x < gw; x++) {
          for (let a = 0; a < cell.length; a += 4) {
            out[k++] = x * sx + cell[a]!;
            out[k++] = y * sy + cell[a + 1]!;
            out[k++] = x * sx + cell[a + 2]!;
            out[k++] = y * sy + cell[a + 3]!;
          }
        }
      }
    });
    return out;
  }
}
