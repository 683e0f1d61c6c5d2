/**
 * The formula behind the full-width fixtures (tools/make_fullwidth_fixtures.py computes the same
 * numbers with numpy): every weight, BN statistic and the input are a function of their
 * torchvision state-dict name and index, so 100-180 MB of weights need not be committed.
 */

function fnv1a(name: string): number {
  let h = 2166136261;
  for (const byte of new TextEncoder().encode(name)) h = Math.imul(h ^ byte, 16777619) >>> 0;
  return h >>> 0;
}

/** Uniform values in [-1, 1) as float64: lowbias32 of (i * 0x9E3779B1 + fnv1a(name)) mod 2^32. */
export function stream(name: string, size: number): Float64Array {
  const seed = fnv1a(name);
  const out = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    let x = (Math.imul(i, 0x9e3779b1) + seed) >>> 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d) >>> 0;
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b) >>> 0;
    x ^= x >>> 16;
    out[i] = ((x >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/** The float32 value of one state-dict entry (same rules as the Python tool's `value_of`). */
export function valueOf(name: string, shape: number[]): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const u = stream(name, size);
  let f: (v: number) => number;
  if (shape.length === 4 || shape.length === 2) {
    const bound = Math.sqrt(6 / shape.slice(1).reduce((a, b) => a * b, 1));
    f = (v) => v * bound;
  } else if (name.endsWith('running_var')) f = (v) => 1 + 0.5 * v;
  else if (name.endsWith('running_mean')) f = (v) => 0.1 * v;
  else if (name.endsWith('.bias')) f = (v) => 0.1 * v;
  else if (name.includes('bn3') || name.includes('downsample.1')) f = (v) => 0.2 + 0.1 * v;
  else f = (v) => 1 + 0.2 * v;
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = f(u[i]!);
  return out;
}
