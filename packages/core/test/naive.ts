/**
 * Independent, deliberately naive references (explicit loops over plain arrays) for the RefConv
 * math, written from the PyTorch definition of the official code, not from our implementation.
 */

/** Deterministic pseudo-random numbers in [-1, 1). */
export function randomArray(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}

/**
 * PyTorch-order reference of W_t for a basis given in OIHW order (w[o][i][y][x], O x I/g x K x K)
 * and a convmap weight [N, N/G, m, m] with G groups, N = O * I/g, exactly as the official
 * `RepConv.forward`: kernel = W + conv2d(W.view(1, N, K, K), convmap, padding = m // 2, groups = G).
 */
export function officialRefocus(w: Float32Array, o: number, ig: number, k: number, convmap: Float32Array, m: number, groups: number): Float32Array {
  const n = o * ig;
  const perGroup = n / groups;
  const p = Math.floor(m / 2);
  const out = Float32Array.from(w);
  for (let c = 0; c < n; c++) {
    const g = Math.floor(c / perGroup);
    for (let y = 0; y < k; y++) {
      for (let x = 0; x < k; x++) {
        let acc = 0;
        for (let j = 0; j < perGroup; j++) {
          const src = g * perGroup + j;
          for (let dy = 0; dy < m; dy++) {
            for (let dx = 0; dx < m; dx++) {
              const yy = y + dy - p;
              const xx = x + dx - p;
              if (yy < 0 || yy >= k || xx < 0 || xx >= k) continue;
              acc += w[(src * k + yy) * k + xx] * convmap[((c * perGroup + j) * m + dy) * m + dx];
            }
          }
        }
        out[(c * k + y) * k + x] += acc;
      }
    }
  }
  return out;
}

/** Padding before/after along one axis for TF 'same' / 'valid' / explicit. */
export function padAmounts(len: number, k: number, stride: number, dilation: number, padding: 'same' | 'valid' | [number, number]): [number, number, number] {
  const dk = (k - 1) * dilation + 1;
  if (Array.isArray(padding)) {
    const out = Math.floor((len + padding[0] + padding[1] - dk) / stride) + 1;
    return [padding[0], padding[1], out];
  }
  if (padding === 'valid') return [0, 0, Math.floor((len - dk) / stride) + 1];
  const out = Math.ceil(len / stride);
  const total = Math.max((out - 1) * stride + dk - len, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2), out];
}

/**
 * Naive NHWC convolution with an OIHW-ordered kernel of `groups` groups (PyTorch semantics for the
 * weights, TF semantics for 'same' padding).
 */
export function naiveConv(
  x: Float32Array, [b, h, wd, cin]: number[],
  w: Float32Array, cout: number, k: number, groups: number,
  stride: number, dilation: number, padding: 'same' | 'valid' | [[number, number], [number, number]],
  bias?: Float32Array,
): { data: Float32Array; shape: number[] } {
  const [pt, , oh] = padAmounts(h, k, stride, dilation, Array.isArray(padding) ? padding[0] : padding);
  const [pl, , ow] = padAmounts(wd, k, stride, dilation, Array.isArray(padding) ? padding[1] : padding);
  const ig = cin / groups;
  const og = cout / groups;
  const out = new Float32Array(b * oh * ow * cout);
  for (let n = 0; n < b; n++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++)
        for (let oc = 0; oc < cout; oc++) {
          const g = Math.floor(oc / og);
          let acc = bias ? bias[oc] : 0;
          for (let i = 0; i < ig; i++)
            for (let ky = 0; ky < k; ky++)
              for (let kx = 0; kx < k; kx++) {
                const iy = oy * stride + ky * dilation - pt;
                const ix = ox * stride + kx * dilation - pl;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                acc += x[((n * h + iy) * wd + ix) * cin + g * ig + i] * w[((oc * ig + i) * k + ky) * k + kx];
              }
          out[((n * oh + oy) * ow + ox) * cout + oc] = acc;
        }
  return { data: out, shape: [b, oh, ow, cout] };
}

/** OIHW [O, I, K, K] -> HWIO [K, K, I, O]. */
export function oihwToHwio(w: Float32Array, o: number, i: number, k: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let y = 0; y < k; y++) for (let x = 0; x < k; x++)
    out[((y * k + x) * i + b) * o + a] = w[((a * i + b) * k + y) * k + x];
  return out;
}

export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let scale = 1e-6;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  let e = 0;
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i] - b[i]));
  return e / scale;
}

/**
 * Naive gradients of y = conv2d(x, W) (NHWC input, HWIO kernel [k, k, Cin, Cout], TF padding) for
 * an output gradient dy: dx (x's layout) and dW (HWIO), as float64 sums.
 */
export function naiveConvGradients(
  x: Float32Array, [b, h, wd, cin]: number[], w: Float32Array, cout: number, k: number,
  stride: number, padding: 'same' | 'valid', dy: Float32Array,
): { dx: Float64Array; dw: Float64Array } {
  const [pt, , oh] = padAmounts(h, k, stride, 1, padding);
  const [pl, , ow] = padAmounts(wd, k, stride, 1, padding);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  for (let n = 0; n < b; n++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++)
        for (let ky = 0; ky < k; ky++)
          for (let kx = 0; kx < k; kx++) {
            const iy = oy * stride + ky - pt;
            const ix = ox * stride + kx - pl;
            if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
            for (let i = 0; i < cin; i++)
              for (let o = 0; o < cout; o++) {
                const g = dy[((n * oh + oy) * ow + ox) * cout + o];
                const wi = ((ky * k + kx) * cin + i) * cout + o;
                const xi = ((n * h + iy) * wd + ix) * cin + i;
                dx[xi] += g * w[wi];
                dw[wi] += g * x[xi];
              }
          }
  return { dx, dw };
}
