/**
 * Box regression targets (torchvision `det_utils.BoxCoder`): a box is encoded
 * relative to a reference ("anchor"/"proposal") box as
 * `(wx*dx/w, wy*dy/h, ww*log(w'/w), wh*log(h'/h))` with centre offsets dx, dy.
 */
import * as tf from '@tensorflow/tfjs';

/** Concatenates four `[N, 1]` columns into `[N, 4]`. */
function cat4(cols: tf.Tensor[], axis = 1): tf.Tensor2D {
  return tf.concat(cols, axis) as tf.Tensor2D;
}

/** `log(1000 / 16)`: decoded log-scales are clamped here so `exp` cannot overflow. */
export const BBOX_XFORM_CLIP = Math.log(1000 / 16);

function centres(boxes: tf.Tensor2D): { w: tf.Tensor2D; h: tf.Tensor2D; cx: tf.Tensor2D; cy: tf.Tensor2D } {
  const [x1, y1, x2, y2] = tf.split(boxes, 4, 1) as tf.Tensor2D[];
  const w = x2!.sub(x1!) as tf.Tensor2D;
  const h = y2!.sub(y1!) as tf.Tensor2D;
  return { w, h, cx: x1!.add(w.mul(0.5)), cy: y1!.add(h.mul(0.5)) };
}

/** Encodes and decodes `[N, 4]` xyxy boxes against `[N, 4]` xyxy reference boxes. */
export class BoxCoder {
  /**
   * @param weights `(wx, wy, ww, wh)`: RetinaNet and RPN use `(1, 1, 1, 1)`, the
   *   Faster R-CNN box head `(10, 10, 5, 5)`.
   * @param bboxXformClip upper clamp of the decoded log width/height.
   */
  constructor(
    readonly weights: readonly [number, number, number, number] = [1, 1, 1, 1],
    readonly bboxXformClip = BBOX_XFORM_CLIP,
  ) {}

  /** Regression targets `[N, 4]` that move `references[i]` onto `boxes[i]`. */
  encode(boxes: tf.Tensor2D, references: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy((): tf.Tensor2D => {
      const [wx, wy, ww, wh] = this.weights;
      const r = centres(references);
      const g = centres(boxes);
      return cat4(
        [
          g.cx.sub(r.cx).div(r.w).mul(wx),
          g.cy.sub(r.cy).div(r.h).mul(wy),
          g.w.div(r.w).log().mul(ww),
          g.h.div(r.h).log().mul(wh),
        ],
        1,
      );
    });
  }

  /** Boxes `[N, 4]` xyxy obtained by applying `codes[i]` to `references[i]`. */
  decode(codes: tf.Tensor2D, references: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy((): tf.Tensor2D => {
      const [wx, wy, ww, wh] = this.weights;
      const r = centres(references);
      const [dx, dy, dw, dh] = tf.split(codes, 4, 1) as tf.Tensor2D[];
      const cx = dx!.div(wx).mul(r.w).add(r.cx);
      const cy = dy!.div(wy).mul(r.h).add(r.cy);
      const w = dw!.div(ww).minimum(this.bboxXformClip).exp().mul(r.w);
      const h = dh!.div(wh).minimum(this.bboxXformClip).exp().mul(r.h);
      const hw = w.mul(0.5);
      const hh = h.mul(0.5);
      return cat4([cx.sub(hw), cy.sub(hh), cx.add(hw), cy.add(hh)], 1);
    });
  }
}
