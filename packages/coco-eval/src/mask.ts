/**
 * The COCO mask API: run-length encoded (RLE) binary masks, as pycocotools' `maskApi.c` and
 * `_mask.pyx` define them, ported operation by operation so results are bit-identical.
 *
 * Conventions (same as pycocotools):
 * - a mask of height h and width w is stored column-major (Fortran order): pixel (y, x) is at
 *   index `x * h + y`;
 * - an RLE `counts` alternates runs of 0s and 1s, starting with 0s (a first count of 0 is allowed);
 * - boxes are `[x, y, width, height]` in pixels.
 */

/** An RLE with its counts decoded to numbers (pycocotools' C `RLE` struct). */
export interface Rle {
  /** mask height */
  h: number;
  /** mask width */
  w: number;
  /** run lengths, alternating 0s and 1s, starting with 0s */
  counts: Uint32Array;
}

/** The JSON form of a compressed RLE, exactly as pycocotools writes it: `{size: [h, w], counts: string}`. */
export interface CompressedRle {
  size: [number, number];
  counts: string;
}

/** The JSON form of an uncompressed RLE: `{size: [h, w], counts: number[]}` (COCO crowd annotations use it). */
export interface UncompressedRle {
  size: [number, number];
  counts: number[];
}

/** A COCO `segmentation` field: polygons `[[x0, y0, x1, y1, ...], ...]`, or an RLE in either form. */
export type Segmentation = number[][] | CompressedRle | UncompressedRle;

/** A box `[x, y, width, height]`. */
export type Box = [number, number, number, number] | number[];


// ---------------------------------------------------------------------------------------------
// Compressed string format (rleToString / rleFrString)
// ---------------------------------------------------------------------------------------------

/**
 * Encodes counts to pycocotools' compressed string: a LEB128-like code with 5 payload bits per
 * character (ASCII 48..111); counts from index 3 on are stored as differences to the count two
 * places earlier (maskApi.c uses `i > 2`, not `i >= 2`; kept so the strings are identical).
 */
export function rleToString(rle: Rle): string {
  const cnts = rle.counts;
  const chars: number[] = [];
  for (let i = 0; i < cnts.length; i++) {
    let x = cnts[i]!;
    if (i > 2) x -= cnts[i - 2]!;
    let more = true;
    while (more) {
      // x & 0x1f and x >>= 5 on a signed 64-bit value, written with floor division so that
      // values beyond 32 bits (counts are uint32, their differences need 33 bits) stay exact
      const shifted = Math.floor(x / 32);
      let c = x - shifted * 32;
      x = shifted;
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      chars.push(c + 48);
    }
  }
  return fromCharCodes(chars);
}

function fromCharCodes(codes: number[]): string {
  let out = '';
  for (let i = 0; i < codes.length; i += 8192) out += String.fromCharCode(...codes.slice(i, i + 8192));
  return out;
}

/**
 * Decodes pycocotools' compressed RLE string. Throws on characters outside the code's alphabet
 * (ASCII 48..111), which maskApi.c would silently turn into garbage counts.
 */
export function rleFrString(s: string, h: number, w: number): Rle {
  const out = new Uint32Array(s.length);
  let m = 0;
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new Error(`compressed RLE string is truncated (ends inside a count): '${abbreviate(s)}'`);
      const code = s.charCodeAt(p);
      if (code < 48 || code > 111) {
        throw new Error(`compressed RLE string has an invalid character '${s[p]}' at ${p}: '${abbreviate(s)}'`);
      }
      const c = code - 48;
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x -= 2 ** (5 * k); // sign extension of the last group
    }
    if (m > 2) x += out[m - 2]!;
    out[m++] = x >>> 0; // (uint) cast: modulo 2^32, exact for integers below 2^53
  }
  return { h, w, counts: out.slice(0, m) };
}

function abbreviate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

// ---------------------------------------------------------------------------------------------
// Encode / decode / area / merge
// ---------------------------------------------------------------------------------------------

/**
 * Run-length encodes a binary mask given column-major (`x * h + y`); any non-zero byte is
 * foreground only if it equals the previous run's value, exactly as maskApi.c compares raw bytes.
 */
export function rleEncode(mask: Uint8Array, h: number, w: number): Rle {
  const a = h * w;
  if (mask.length < a) throw new Error(`rleEncode: mask has ${mask.length} pixels, expected h*w = ${a}`);
  const cnts = new Uint32Array(a + 1);
  let k = 0;
  let p = 0;
  let c = 0;
  for (let j = 0; j < a; j++) {
    const v = mask[j]!;
    if (v !== p) {
      cnts[k++] = c;
      c = 0;
      p = v;
    }
    c++;
  }
  cnts[k++] = c;
  return { h, w, counts: cnts.slice(0, k) };
}

/** Decodes an RLE to a column-major mask of h*w bytes (0/1). Throws if the runs overflow the mask. */
export function rleDecode(rle: Rle): Uint8Array {
  const size = rle.h * rle.w;
  const mask = new Uint8Array(size);
  let pos = 0;
  let v = 0;
  for (let j = 0; j < rle.counts.length; j++) {
    const n = rle.counts[j]!;
    if (pos + n > size) throw new Error(`rleDecode: runs sum past h*w = ${size} (invalid RLE)`);
    if (v) mask.fill(1, pos, pos + n);
    pos += n;
    v = v ? 0 : 1;
  }
  return mask;
}

/** Foreground pixel count (sum of the odd-indexed runs), as maskApi.c's rleArea (uint32 arithmetic). */
export function rleArea(rle: Rle): number {
  let a = 0;
  const c = rle.counts;
  for (let j = 1; j < c.length; j += 2) a = (a + c[j]!) >>> 0;
  return a;
}

/**
 * Union (or intersection) of RLEs of one size. Different sizes give an empty 0x0 RLE, as maskApi.c.
 */
export function rleMerge(rles: Rle[], intersect = false): Rle {
  if (rles.length === 0) return { h: 0, w: 0, counts: new Uint32Array(0) };
  const first = rles[0]!;
  if (rles.length === 1) return { h: first.h, w: first.w, counts: first.counts.slice() };
  let h = first.h;
  let w = first.w;
  let cnts: Uint32Array = first.counts.slice();
  for (let i = 1; i < rles.length; i++) {
    const B = rles[i]!;
    if (B.h !== h || B.w !== w) {
      h = w = 0;
      cnts = new Uint32Array(0);
      break;
    }
    const A = cnts;
    const out = new Uint32Array(A.length + B.counts.length + 1);
    let ca = A[0] ?? 0;
    let cb = B.counts[0] ?? 0;
    let v = 0;
    let va = 0;
    let vb = 0;
    let m = 0;
    let a = 1;
    let b = 1;
    let cc = 0;
    let ct = 1;
    while (ct > 0) {
      const c = Math.min(ca, cb);
      cc += c;
      ct = 0;
      ca -= c;
      if (!ca && a < A.length) {
        ca = A[a++]!;
        va = va ? 0 : 1;
      }
      ct += ca;
      cb -= c;
      if (!cb && b < B.counts.length) {
        cb = B.counts[b++]!;
        vb = vb ? 0 : 1;
      }
      ct += cb;
      const vp = v;
      v = intersect ? va & vb : va | vb;
      if (v !== vp || ct === 0) {
        out[m++] = cc;
        cc = 0;
      }
    }
    cnts = out.slice(0, m);
  }
  return { h, w, counts: cnts };
}

// ---------------------------------------------------------------------------------------------
// Boxes
// ---------------------------------------------------------------------------------------------

/**
 * Tight box `[x, y, w, h]` of the foreground (pycocotools 2.0.x rleToBbox: a foreground run that
 * crosses a column boundary spans the full height; zero-length runs are skipped; empty -> zeros).
 */
export function rleToBbox(rle: Rle): [number, number, number, number] {
  const { h, w } = rle;
  const c = rle.counts;
  const m = Math.floor(c.length / 2) * 2;
  if (m === 0) return [0, 0, 0, 0];
  let xs = w;
  let ys = h;
  let xe = 0;
  let ye = 0;
  let cc = 0;
  for (let j = 0; j < m; j++) {
    const start = cc;
    cc = (cc + c[j]!) >>> 0;
    if (j % 2 === 0 || c[j] === 0) continue;
    const yStart = start % h;
    const xStart = (start - yStart) / h;
    const last = (cc - 1) >>> 0;
    const yEnd = last % h;
    const xEnd = (last - yEnd) / h;
    xs = Math.min(xs, xStart);
    xe = Math.max(xe, xEnd);
    if (xStart < xEnd) {
      ys = 0;
      ye = h - 1;
    } else {
      ys = Math.min(ys, yStart);
      ye = Math.max(ye, yEnd);
    }
  }
  // uint arithmetic as in C: an RLE with only zero-length foreground runs wraps around
  return [xs, ys, (xe - xs + 1) >>> 0, (ye - ys + 1) >>> 0];
}

/** Rasterises a box `[x, y, w, h]` as the 4-corner polygon, as maskApi.c's rleFrBbox. */
export function rleFrBbox(bb: Box, h: number, w: number): Rle {
  const xs = bb[0]!;
  const xe = xs + bb[2]!;
  const ys = bb[1]!;
  const ye = ys + bb[3]!;
  return rleFrPoly([xs, ys, xs, ye, xe, ye, xe, ys], h, w);
}

/**
 * Rasterises one polygon `[x0, y0, x1, y1, ...]` exactly as maskApi.c's rleFrPoly: the boundary is
 * upsampled 5x, walked with integer steps (C `(int)` truncation toward zero included), and the
 * crossings of pixel-centre columns become the RLE. An odd trailing coordinate is dropped, as
 * `_mask.pyx` passes `len(poly) / 2` vertices.
 */
/**
 * Reused work buffers of rleFrPoly: allocating several typed arrays per polygon (off-heap in V8)
 * cost more than the rasterisation itself. Views of exactly the requested length are returned.
 */
const polyScratch = {
  ints: new Map<string, Int32Array>(),
  floats: new Map<string, Float64Array>(),
  uints: new Map<string, Uint32Array>(),
  int(name: string, n: number): Int32Array {
    let buf = this.ints.get(name);
    if (!buf || buf.length < n) this.ints.set(name, (buf = new Int32Array(Math.max(n, 2 * (buf?.length ?? 0), 1024))));
    return buf.subarray(0, n);
  },
  float(name: string, n: number): Float64Array {
    let buf = this.floats.get(name);
    if (!buf || buf.length < n) this.floats.set(name, (buf = new Float64Array(Math.max(n, 2 * (buf?.length ?? 0), 1024))));
    return buf.subarray(0, n);
  },
  uint(name: string, n: number): Uint32Array {
    let buf = this.uints.get(name);
    if (!buf || buf.length < n) this.uints.set(name, (buf = new Uint32Array(Math.max(n, 2 * (buf?.length ?? 0), 1024))));
    return buf.subarray(0, n);
  },
};

export function rleFrPoly(xy: ArrayLike<number>, h: number, w: number): Rle {
  const k = Math.floor(xy.length / 2);
  if (k === 0) throw new Error('rleFrPoly: polygon has no vertices');
  const scale = 5;
  const x = polyScratch.int('x', k + 1);
  const y = polyScratch.int('y', k + 1);
  for (let j = 0; j < k; j++) x[j] = Math.trunc(scale * xy[j * 2]! + 0.5);
  x[k] = x[0]!;
  for (let j = 0; j < k; j++) y[j] = Math.trunc(scale * xy[j * 2 + 1]! + 0.5);
  y[k] = y[0]!;
  // maskApi.c walks the 5x upsampled boundary point by point (u, v) and keeps the steps between
  // consecutive points that cross a pixel-centre column. The same crossings are found here without
  // storing the points: a point is computed from its edge and step (the same expressions, with the
  // Int32Array stores of the walk as ToInt32 `| 0`), and only the steps that can cross are visited.
  let total = 0; // points of the walk: a bound on the crossings
  for (let j = 0; j < k; j++) total += Math.max(Math.abs(x[j]! - x[j + 1]!), Math.abs(y[j]! - y[j + 1]!)) + 1;
  const bx = polyScratch.int('bx', total);
  const by = polyScratch.int('by', total);
  let n = 0;
  /** maskApi.c's test for the step (pu, pv) -> (cu, cv) of the walk; records the crossing. */
  const cross = (pu: number, pv: number, cu: number, cv: number): void => {
    if (cu === pu) return;
    let xd = cu < pu ? cu : cu - 1;
    xd = (xd + 0.5) / scale - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > w - 1) return;
    let yd = cv < pv ? cv : pv;
    yd = (yd + 0.5) / scale - 0.5;
    if (yd < 0) yd = 0;
    else if (yd > h) yd = h;
    yd = Math.ceil(yd);
    bx[n] = xd;
    by[n] = yd;
    n++;
  };
  let lastU = 0;
  let lastV = 0;
  for (let j = 0; j < k; j++) {
    let xs = x[j]!;
    let xe = x[j + 1]!;
    let ys = y[j]!;
    let ye = y[j + 1]!;
    const dx = Math.abs(xe - xs);
    const dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      let t = xs;
      xs = xe;
      xe = t;
      t = ys;
      ys = ye;
      ye = t;
    }
    const s = dx >= dy ? (ye - ys) / dx : (xe - xs) / dy;
    if (dx >= dy) {
      // point d of the edge: u = t + xs, v = (int)(ys + s t + .5), t = flip ? dx - d : d
      const U = (d: number) => ((flip ? dx - d : d) + xs) | 0;
      const V = (d: number) => (ys + s * (flip ? dx - d : d) + 0.5) | 0;
      if (j > 0) cross(lastU, lastV, U(0), V(0));
      // u moves by one per step, and (xd + 0.5) / 5 - 0.5 is integral only for xd = 2 (mod 5), with
      // xd = u(d - 1) going right and u(d) going left: only every 5th step can cross.
      const r = flip ? (((xs + dx - 2) % 5) + 5) % 5 : (((3 - xs) % 5) + 5) % 5;
      for (let d = r === 0 ? 5 : r; d <= dx; d += 5) cross(U(d - 1), V(d - 1), U(d), V(d));
      lastU = U(dx);
      lastV = V(dx);
    } else {
      // point d of the edge: v = t + ys, u = (int)(xs + s t + .5), t = flip ? dy - d : d
      const U = (d: number) => (xs + s * (flip ? dy - d : d) + 0.5) | 0;
      const V = (d: number) => ((flip ? dy - d : d) + ys) | 0;
      let pu = U(0);
      let pv = V(0);
      if (j > 0) cross(lastU, lastV, pu, pv);
      // with dx = 0 (s = 0) u is the same at every point: nothing crosses inside the edge
      if (dx > 0) {
        for (let d = 1; d <= dy; d++) {
          const cu = U(d);
          const cv = V(d);
          if (cu !== pu) cross(pu, pv, cu, cv);
          pu = cu;
          pv = cv;
        }
      }
      lastU = U(dy);
      lastV = V(dy);
    }
  }
  // RLE from the sorted column-major positions x*h + y of the crossings (maskApi.c: qsort). Every
  // x is in [0, w-1] and y in [0, h], so ordering by (x, y) is ordering by value: a counting sort
  // over the columns the crossings occupy, then an insertion sort of each column's few y values.
  let cMin = w;
  let cMax = -1;
  for (let j = 0; j < n; j++) {
    const c = bx[j]!;
    if (c < cMin) cMin = c;
    if (c > cMax) cMax = c;
  }
  const span = cMax - cMin + 1; // <= 0 without crossings
  const a = polyScratch.float('a', n + 1);
  if (span > 0) {
    const colStart = polyScratch.int('col', span + 1).fill(0);
    for (let j = 0; j < n; j++) colStart[bx[j]! - cMin + 1]!++;
    for (let c = 0; c < span; c++) colStart[c + 1]! += colStart[c]!;
    const ys = polyScratch.int('ys', n);
    const fill = polyScratch.int('fill', span);
    fill.set(colStart.subarray(0, span));
    for (let j = 0; j < n; j++) ys[fill[bx[j]! - cMin]!++] = by[j]!;
    for (let c = 0; c < span; c++) {
      const lo = colStart[c]!;
      const hi = colStart[c + 1]!;
      for (let i = lo + 1; i < hi; i++) {
        const yv = ys[i]!;
        let q = i - 1;
        while (q >= lo && ys[q]! > yv) {
          ys[q + 1] = ys[q]!;
          q--;
        }
        ys[q + 1] = yv;
      }
      // (uint) casts of maskApi.c: ToUint32 is the same modulo 2^32
      for (let i = lo; i < hi; i++) a[i] = ((c + cMin) * h + ys[i]!) >>> 0;
    }
  }
  a[n] = (h * w) >>> 0;
  const kk = n + 1;
  let p = 0;
  for (let j = 0; j < kk; j++) {
    const t = a[j]!;
    a[j] = t - p;
    p = t;
  }
  const b = polyScratch.uint('b', kk);
  let j = 0;
  let m = 0;
  b[m++] = a[j++]!;
  while (j < kk) {
    if (a[j]! > 0) b[m++] = a[j++]!;
    else {
      j++;
      if (j < kk) b[m - 1] += a[j++]!;
    }
  }
  return { h, w, counts: b.slice(0, m) };
}

// ---------------------------------------------------------------------------------------------
// IoU
// ---------------------------------------------------------------------------------------------

/** C's `fmin`: a NaN argument is ignored (Math.min would return NaN); maskApi.c's bbIou uses it. */
function fmin(a: number, b: number): number {
  return a !== a ? b : b !== b ? a : Math.min(a, b);
}

/** C's `fmax`: a NaN argument is ignored. */
function fmax(a: number, b: number): number {
  return a !== a ? b : b !== b ? a : Math.max(a, b);
}

/**
 * Box IoU, maskApi.c's bbIou. Output is `[D, G]` row-major (`o[d * G + g]`). For a crowd ground
 * truth the union is the detection's area alone (so IoU = fraction of the detection inside it).
 *
 * @param dt detection boxes, flat `[D * 4]` xywh
 * @param gt ground-truth boxes, flat `[G * 4]` xywh
 * @param iscrowd `[G]` crowd flags
 */
export function bbIou(
  dt: ArrayLike<number>,
  gt: ArrayLike<number>,
  iscrowd: ArrayLike<number> | null,
  out?: Float64Array,
): Float64Array {
  const D = dt.length / 4;
  const G = gt.length / 4;
  const o = out ?? new Float64Array(D * G);
  for (let g = 0; g < G; g++) {
    const g0 = gt[g * 4]!;
    const g1 = gt[g * 4 + 1]!;
    const g2 = gt[g * 4 + 2]!;
    const g3 = gt[g * 4 + 3]!;
    const ga = g2 * g3;
    const crowd = iscrowd !== null && iscrowd[g] !== 0;
    for (let d = 0; d < D; d++) {
      const d0 = dt[d * 4]!;
      const d1 = dt[d * 4 + 1]!;
      const d2 = dt[d * 4 + 2]!;
      const d3 = dt[d * 4 + 3]!;
      const da = d2 * d3;
      o[d * G + g] = 0;
      const iw = fmin(d2 + d0, g2 + g0) - fmax(d0, g0);
      if (iw <= 0) continue;
      const ih = fmin(d3 + d1, g3 + g1) - fmax(d1, g1);
      if (ih <= 0) continue;
      const i = iw * ih;
      const u = crowd ? da : da + ga - i;
      o[d * G + g] = i / u;
    }
  }
  return o;
}

/**
 * Mask IoU, maskApi.c's rleIou: `[D, G]` row-major. Pairs whose boxes do not overlap are 0; masks
 * of different sizes give -1; a crowd ground truth divides by the detection's area.
 */
export function rleIou(dt: Rle[], gt: Rle[], iscrowd: ArrayLike<number> | null): Float64Array {
  const D = dt.length;
  const G = gt.length;
  const db = new Float64Array(D * 4);
  const gb = new Float64Array(G * 4);
  for (let d = 0; d < D; d++) db.set(rleToBbox(dt[d]!), d * 4);
  for (let g = 0; g < G; g++) gb.set(rleToBbox(gt[g]!), g * 4);
  const o = bbIou(db, gb, iscrowd);
  for (let g = 0; g < G; g++) {
    const crowd = iscrowd !== null && iscrowd[g] !== 0;
    const B = gt[g]!;
    for (let d = 0; d < D; d++) {
      if (!(o[d * G + g]! > 0)) continue;
      const A = dt[d]!;
      if (A.h !== B.h || A.w !== B.w) {
        o[d * G + g] = -1;
        continue;
      }
      o[d * G + g] = rlePairIou(A.counts, B.counts, crowd);
    }
  }
  return o;
}

function rlePairIou(ac: Uint32Array, bc: Uint32Array, crowd: boolean): number {
  let ca = ac[0]!;
  let cb = bc[0]!;
  const ka = ac.length;
  const kb = bc.length;
  let va = 0;
  let vb = 0;
  let a = 1;
  let b = 1;
  let inter = 0;
  let union = 0;
  let ct = 1;
  while (ct > 0) {
    const c = Math.min(ca, cb);
    if (va || vb) {
      union += c;
      if (va && vb) inter += c;
    }
    ct = 0;
    ca -= c;
    if (!ca && a < ka) {
      ca = ac[a++]!;
      va = va ? 0 : 1;
    }
    ct += ca;
    cb -= c;
    if (!cb && b < kb) {
      cb = bc[b++]!;
      vb = vb ? 0 : 1;
    }
    ct += cb;
  }
  if (inter === 0) union = 1;
  else if (crowd) union = rleArea({ h: 0, w: 0, counts: ac });
  return inter / union;
}

// ---------------------------------------------------------------------------------------------
// Python-object level API (pycocotools.mask)
// ---------------------------------------------------------------------------------------------

/** Compresses an RLE to the JSON form pycocotools writes. */
export function toCompressed(rle: Rle): CompressedRle {
  return { size: [rle.h, rle.w], counts: rleToString(rle) };
}

/** Parses a compressed RLE object (the counts string) into an {@link Rle}. */
export function fromCompressed(obj: CompressedRle): Rle {
  checkSize(obj.size);
  if (typeof obj.counts !== 'string') throw new Error('compressed RLE: counts must be a string');
  return rleFrString(obj.counts, obj.size[0], obj.size[1]);
}

/** Uncompressed RLE `{size, counts: number[]}` -> RLE; its own size is used, as pycocotools does. */
export function frUncompressedRLE(obj: UncompressedRle): Rle {
  checkSize(obj.size);
  const counts = new Uint32Array(obj.counts.length);
  for (let i = 0; i < obj.counts.length; i++) {
    const c = obj.counts[i];
    if (typeof c !== 'number' || !Number.isFinite(c)) throw new Error(`uncompressed RLE: counts[${i}] is not a number`);
    counts[i] = c;
  }
  return { h: obj.size[0], w: obj.size[1], counts };
}

function checkSize(size: unknown): asserts size is [number, number] {
  if (!Array.isArray(size) || size.length !== 2 || !size.every((v) => Number.isInteger(v) && v >= 0)) {
    throw new Error(`RLE size must be [height, width] non-negative integers, got ${JSON.stringify(size)}`);
  }
}

/** Encodes a column-major binary mask to a compressed RLE (pycocotools `mask.encode` on one mask). */
export function encode(mask: Uint8Array, h: number, w: number): CompressedRle {
  return toCompressed(rleEncode(mask, h, w));
}

/**
 * Encodes a row-major mask (`y * w + x`, the layout of a `[h, w]` tensor or image) — what
 * pycocotools' `mask.encode(np.asfortranarray(m))` gives for the same `[h, w]` array.
 */
export function encodeRowMajor(mask: ArrayLike<number>, h: number, w: number): CompressedRle {
  if (mask.length < h * w) throw new Error(`encodeRowMajor: mask has ${mask.length} pixels, expected h*w = ${h * w}`);
  const col = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) col[x * h + y] = mask[y * w + x] ? 1 : 0;
  return encode(col, h, w);
}

/** Decodes a compressed RLE to a row-major mask (`y * w + x`) of 0/1 bytes. */
export function decodeRowMajor(obj: CompressedRle): { mask: Uint8Array; h: number; w: number } {
  const rle = fromCompressed(obj);
  const col = rleDecode(rle);
  const { h, w } = rle;
  const mask = new Uint8Array(h * w);
  for (let x = 0; x < w; x++) for (let y = 0; y < h; y++) mask[y * w + x] = col[x * h + y]!;
  return { mask, h, w };
}

/** Decodes a compressed RLE to a column-major mask (pycocotools `mask.decode`, before numpy's reshape). */
export function decode(obj: CompressedRle): Uint8Array {
  return rleDecode(fromCompressed(obj));
}

/** Foreground area of compressed RLEs (pycocotools `mask.area`). */
export function area(obj: CompressedRle): number {
  return rleArea(fromCompressed(obj));
}

/** Tight box of a compressed RLE (pycocotools `mask.toBbox`). */
export function toBbox(obj: CompressedRle): [number, number, number, number] {
  return rleToBbox(fromCompressed(obj));
}

/** Union or intersection of compressed RLEs (pycocotools `mask.merge`). */
export function merge(objs: CompressedRle[], intersect = false): CompressedRle {
  return toCompressed(rleMerge(objs.map(fromCompressed), intersect));
}

/** Polygons -> compressed RLEs, one per polygon (pycocotools `frPoly`). */
export function frPoly(polys: number[][], h: number, w: number): CompressedRle[] {
  return polys.map((p) => toCompressed(rleFrPoly(p, h, w)));
}

/** Boxes -> compressed RLEs (pycocotools `frBbox`). */
export function frBbox(boxes: Box[], h: number, w: number): CompressedRle[] {
  return boxes.map((b) => toCompressed(rleFrBbox(b, h, w)));
}

/**
 * Converts a segmentation to one RLE as pycocotools' `COCO.annToRLE`: polygons are rasterised
 * and merged, uncompressed RLE is compressed, a compressed RLE is parsed as is.
 * @param where names the annotation in error messages
 */
export function segmentationToRle(segm: unknown, h: number, w: number, where = 'segmentation'): Rle {
  if (Array.isArray(segm)) {
    if (segm.length === 0) throw new Error(`${where}: empty polygon list`);
    const first = segm[0];
    if (!Array.isArray(first)) throw new Error(`${where}: polygon list must hold arrays of numbers`);
    if (first.length === 4) {
      // pycocotools' frPyObjects treats a list whose first entry has 4 numbers as boxes and then fails
      throw new Error(`${where}: first polygon has only 2 points (4 numbers); pycocotools cannot read it either`);
    }
    const rles = segm.map((poly, i) => {
      if (!Array.isArray(poly) || poly.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
        throw new Error(`${where}: polygon ${i} must be an array of finite numbers`);
      }
      if (poly.length < 4) throw new Error(`${where}: polygon ${i} has ${poly.length} numbers, needs at least 6`);
      return rleFrPoly(poly, h, w);
    });
    return rleMerge(rles);
  }
  if (segm !== null && typeof segm === 'object' && 'counts' in segm && 'size' in segm) {
    const obj = segm as { counts: unknown; size: unknown };
    if (Array.isArray(obj.counts)) return frUncompressedRLE(obj as UncompressedRle);
    if (typeof obj.counts === 'string') {
      checkSize(obj.size);
      return rleFrString(obj.counts, obj.size[0], obj.size[1]);
    }
    throw new Error(`${where}: RLE counts must be a string or an array of numbers`);
  }
  throw new Error(`${where}: must be a polygon list or an RLE {size, counts}, got ${describe(segm)}`);
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s === undefined ? typeof v : abbreviate(s);
}
