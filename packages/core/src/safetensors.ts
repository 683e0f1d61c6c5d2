/**
 * Reader and writer for the safetensors format (the weight format of PyTorch / timm /
 * Hugging Face): an 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON
 * (`{"__metadata__": {str: str}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}}`,
 * offsets relative to the first data byte), then the raw little-endian tensor bytes.
 *
 * Floating-point tensors (F64, F32, F16, BF16) are decoded to `Float32Array` because that is
 * what tfjs computes in; integer tensors keep their width (`I64` -> `BigInt64Array`, which is
 * lossless; convert with `Number()` where needed). The stored dtype is reported either way.
 */
import * as fs from 'node:fs';
import { writeFileAtomic } from './atomic-write.js';

export { removeStaleTemporaries, writeFileAtomic } from './atomic-write.js';

/** Element types of the safetensors format that this module reads and writes. */
export type SafetensorsDType =
  | 'F64' | 'F32' | 'F16' | 'BF16'
  | 'I64' | 'I32' | 'I16' | 'I8'
  | 'U64' | 'U32' | 'U16' | 'U8'
  | 'BOOL';

/** Typed arrays a tensor's values are returned in / accepted from. */
export type SafetensorsData =
  | Float32Array | Float64Array
  | BigInt64Array | BigUint64Array
  | Int32Array | Int16Array | Int8Array
  | Uint32Array | Uint16Array | Uint8Array;

/** One tensor read from a safetensors file. */
export interface SafeTensor {
  /** dtype as stored in the file (F16/BF16/F64 data are still decoded to Float32Array). */
  dtype: SafetensorsDType;
  /** Shape as stored (row-major, PyTorch layout: e.g. OIHW for conv kernels). */
  shape: number[];
  /** Values in row-major order. Floats: Float32Array; I64: BigInt64Array; BOOL: Uint8Array of 0/1. */
  data: SafetensorsData;
}

/** What {@link readSafetensors} returns: tensors by name, in file order, plus the `__metadata__` strings. */
export interface SafetensorsContents extends Map<string, SafeTensor> {
  /** The file's `__metadata__` (string -> string); empty when absent. */
  metadata: Record<string, string>;
}

/** One tensor to write. */
export interface SafeTensorInput {
  /** Row-major shape; the product must equal `data.length`. */
  shape: readonly number[];
  /** Values in row-major order. */
  data: SafetensorsData;
  /**
   * Stored dtype. Default: inferred from the array type (Float32Array -> F32, Int32Array -> I32,
   * BigInt64Array -> I64, Uint8Array -> U8, ...). A Float32Array may also be stored as F16 or BF16
   * (rounded to nearest even), and a Uint8Array as BOOL.
   */
  dtype?: SafetensorsDType;
}

const ITEM_SIZE: Record<SafetensorsDType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, I32: 4, I16: 2, I8: 1,
  U64: 8, U32: 4, U16: 2, U8: 1,
  BOOL: 1,
};

const HEADER_LIMIT = 100 * 1024 * 1024; // same guard as the reference implementation

function isDType(s: unknown): s is SafetensorsDType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(ITEM_SIZE, s);
}

function numElements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** IEEE half -> float. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // subnormal or zero
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float -> IEEE half, round to nearest even (as torch's `.half()`). */
function floatToHalf(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow -> signed zero
    mant |= 0x800000; // make the implicit 1 explicit, then shift into the subnormal range
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++; // may carry into the exponent: correct
  return sign | half;
}

/** float -> bfloat16 bits, round to nearest even (as torch's `.bfloat16()`). */
function floatToBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff)) return (bits >>> 16) | 0x40; // keep NaN a NaN
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

function decode(dtype: SafetensorsDType, bytes: Uint8Array, n: number): SafetensorsData {
  // Copy into a fresh, aligned buffer: the file buffer gives no alignment guarantee.
  // (Not bytes.slice(): on a Node Buffer that is a view, not a copy.)
  const fresh = new Uint8Array(bytes.byteLength);
  fresh.set(bytes);
  const copy = fresh.buffer;
  const view = new DataView(copy);
  switch (dtype) {
    case 'F32': return new Float32Array(copy, 0, n);
    case 'F64': return Float32Array.from(new Float64Array(copy, 0, n));
    case 'F16': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(n);
      const outBits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) outBits[i] = view.getUint16(2 * i, true) << 16;
      return out;
    }
    case 'I64': return new BigInt64Array(copy, 0, n);
    case 'U64': return new BigUint64Array(copy, 0, n);
    case 'I32': return new Int32Array(copy, 0, n);
    case 'U32': return new Uint32Array(copy, 0, n);
    case 'I16': return new Int16Array(copy, 0, n);
    case 'U16': return new Uint16Array(copy, 0, n);
    case 'I8': return new Int8Array(copy, 0, n);
    case 'U8': case 'BOOL': return new Uint8Array(copy, 0, n);
  }
}

/**
 * Reads a safetensors file (or an in-memory buffer holding one).
 *
 * @param source path of the file, or its bytes.
 * @returns tensors by name in file order; `.metadata` holds `__metadata__`.
 * @throws Error naming the file when it is truncated, the header is not valid JSON, a dtype is
 *   unknown, a shape is malformed, or data offsets fall outside the data section / disagree
 *   with the shape.
 */
export function readSafetensors(source: string | Uint8Array): SafetensorsContents {
  const where = typeof source === 'string' ? source : '<buffer>';
  const fail = (msg: string): never => {
    throw new Error(`safetensors ${where}: ${msg}`);
  };
  let buf: Uint8Array;
  if (typeof source === 'string') {
    try {
      buf = fs.readFileSync(source);
    } catch (e) {
      return fail(`cannot read file (${(e as Error).message})`);
    }
  } else {
    buf = source;
  }
  if (buf.byteLength < 8) fail(`truncated file: ${buf.byteLength} bytes, need at least 8 for the header length`);
  const headerLen = new DataView(buf.buffer, buf.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(HEADER_LIMIT)) fail(`header length ${headerLen} is implausible (limit ${HEADER_LIMIT}); not a safetensors file?`);
  const hlen = Number(headerLen);
  if (8 + hlen > buf.byteLength) fail(`truncated file: header says ${hlen} header bytes but only ${buf.byteLength - 8} follow`);
  const headerText = new TextDecoder('utf-8', { fatal: false }).decode(buf.subarray(8, 8 + hlen));
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('header JSON is not an object');

  const data = buf.subarray(8 + hlen);
  const out = new Map<string, SafeTensor>() as SafetensorsContents;
  out.metadata = {};
  const ranges: Array<[number, number, string]> = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) fail('__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__['${k}'] must be a string, got ${JSON.stringify(v)}`);
        out.metadata[k] = v as string;
      }
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e === null || typeof e !== 'object') fail(`tensor '${name}': header entry is not an object`);
    if (!isDType(e.dtype)) fail(`tensor '${name}': unknown dtype ${JSON.stringify(e.dtype)} (supported: ${Object.keys(ITEM_SIZE).join(', ')})`);
    const dtype = e.dtype as SafetensorsDType;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      fail(`tensor '${name}': shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`);
    }
    const shape = e.shape as number[];
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isInteger(o) && o >= 0)) {
      fail(`tensor '${name}': data_offsets ${JSON.stringify(offs)} must be [begin, end] non-negative integers`);
    }
    const [begin, end] = offs as [number, number];
    if (end < begin) fail(`tensor '${name}': data_offsets [${begin}, ${end}] end before begin`);
    if (end > data.byteLength) {
      fail(`tensor '${name}': data_offsets [${begin}, ${end}] out of range, data section has ${data.byteLength} bytes (truncated file?)`);
    }
    const n = numElements(shape);
    if (end - begin !== n * ITEM_SIZE[dtype]) {
      fail(`tensor '${name}': data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype}${JSON.stringify(shape)} needs ${n * ITEM_SIZE[dtype]}`);
    }
    ranges.push([begin, end, name]);
    out.set(name, { dtype, shape: [...shape], data: decode(dtype, data.subarray(begin, end), n) });
  }
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  for (let i = 1; i < ranges.length; i++) {
    const [, pe, pn] = ranges[i - 1]!;
    const [b, e, nm] = ranges[i]!;
    if (b < pe && e > b) fail(`tensors '${pn}' and '${nm}' overlap in the data section`);
  }
  return out;
}

function inferDType(data: SafetensorsData): SafetensorsDType {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof BigInt64Array) return 'I64';
  if (data instanceof BigUint64Array) return 'U64';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof Uint32Array) return 'U32';
  if (data instanceof Int16Array) return 'I16';
  if (data instanceof Uint16Array) return 'U16';
  if (data instanceof Int8Array) return 'I8';
  return 'U8';
}

/** Encodes one tensor: same-width copies, or float rounding to F16/BF16/F64 from a Float32Array. */
function encodeTensor(name: string, t: SafeTensorInput): { dtype: SafetensorsDType; bytes: Uint8Array } {
  const natural = inferDType(t.data);
  const dtype = t.dtype ?? natural;
  if (!isDType(dtype)) throw new Error(`safetensors write: tensor '${name}': unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`safetensors write: tensor '${name}': shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`);
  }
  const n = numElements(t.shape);
  if (n !== t.data.length) {
    throw new Error(`safetensors write: tensor '${name}': shape ${JSON.stringify(t.shape)} has ${n} elements but data has ${t.data.length}`);
  }
  if (dtype === natural || (dtype === 'BOOL' && natural === 'U8')) {
    const src = t.data;
    return { dtype, bytes: new Uint8Array(src.buffer, src.byteOffset, src.byteLength).slice() };
  }
  if (natural === 'F32' && (dtype === 'F16' || dtype === 'BF16')) {
    const out = new Uint16Array(n);
    const enc = dtype === 'F16' ? floatToHalf : floatToBf16;
    const src = t.data as Float32Array;
    for (let i = 0; i < n; i++) out[i] = enc(src[i]!);
    return { dtype, bytes: new Uint8Array(out.buffer) };
  }
  if (natural === 'F32' && dtype === 'F64') {
    return { dtype, bytes: new Uint8Array(Float64Array.from(t.data as Float32Array).buffer) };
  }
  throw new Error(`safetensors write: tensor '${name}': cannot store a ${t.data.constructor.name} as ${dtype}`);
}

/**
 * Serialises tensors to safetensors bytes (header padded with spaces to 8 bytes, as the
 * reference implementation does, so data starts aligned).
 */
export function encodeSafetensors(
  tensors: Record<string, SafeTensorInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors write: metadata['${k}'] must be a string, got ${typeof v}`);
    }
    header.__metadata__ = metadata;
  }
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new Error(`safetensors write: '__metadata__' is reserved and cannot name a tensor`);
    const { dtype, bytes } = encodeTensor(name, t);
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.byteLength] };
    parts.push(bytes);
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  let jsonBytes = new TextEncoder().encode(json);
  const pad = (8 - (jsonBytes.byteLength % 8)) % 8;
  if (pad) {
    json += ' '.repeat(pad);
    jsonBytes = new TextEncoder().encode(json);
  }
  const out = new Uint8Array(8 + jsonBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(jsonBytes.byteLength), true);
  out.set(jsonBytes, 8);
  let pos = 8 + jsonBytes.byteLength;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.byteLength;
  }
  return out;
}

/**
 * Writes tensors to a safetensors file atomically and durably with {@link writeFileAtomic}
 * (temporary file, fsync, rename, fsync of the directory; stale temporaries of a killed earlier
 * write are removed), so a crash never leaves a half-written file. Parent directories are created.
 */
export function writeSafetensors(
  file: string,
  tensors: Record<string, SafeTensorInput>,
  metadata?: Record<string, string>,
): void {
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}
