/**
 * Decoder for index (label) PNGs: palette (colour type 3) and greyscale (colour type 0)
 * images, returning the stored indices themselves. Image libraries (sharp included) expand
 * palette PNGs to RGB, which loses the class ids of VOC `SegmentationClass` masks; this reads
 * the raw samples instead.
 */
import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';

/** A single-channel label map, row-major `[height * width]`. */
export interface IndexMap {
  width: number;
  height: number;
  data: Uint8Array;
}

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

/**
 * Reads an 8-bit-or-less palette or greyscale PNG as class indices.
 * @throws naming the file when it is not a PNG, is truncated, or is an RGB/16-bit image.
 */
export function readIndexPng(path: string): IndexMap {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read mask ${path}: ${(e as Error).message}`);
  }
  return decodeIndexPng(buf, path);
}

/** As {@link readIndexPng}, from bytes; `source` names the data in errors. */
export function decodeIndexPng(buf: Uint8Array, source = 'PNG'): IndexMap {
  if (buf.length < 8 || SIGNATURE.some((b, i) => buf[i] !== b)) throw new Error(`${source}: not a PNG file`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 8;
  let width = 0;
  let height = 0;
  let bitDepth = 0;
  let colourType = -1;
  let interlace = 0;
  const idat: Uint8Array[] = [];
  while (pos + 8 <= buf.length) {
    const len = view.getUint32(pos);
    const type = String.fromCharCode(buf[pos + 4]!, buf[pos + 5]!, buf[pos + 6]!, buf[pos + 7]!);
    const start = pos + 8;
    if (start + len > buf.length) throw new Error(`${source}: truncated PNG (chunk ${type} runs past the end)`);
    if (type === 'IHDR') {
      width = view.getUint32(start);
      height = view.getUint32(start + 4);
      bitDepth = buf[start + 8]!;
      colourType = buf[start + 9]!;
      interlace = buf[start + 12]!;
    } else if (type === 'IDAT') {
      idat.push(buf.subarray(start, start + len));
    } else if (type === 'IEND') {
      break;
    }
    pos = start + len + 4; // + CRC
  }
  if (colourType !== 0 && colourType !== 3) {
    const kind = colourType === 2 ? 'RGB' : colourType === 6 ? 'RGBA' : colourType === 4 ? 'grey+alpha' : `colour type ${colourType}`;
    throw new Error(`${source}: label masks must be palette or greyscale index PNGs, this one is ${kind}`);
  }
  if (bitDepth > 8) throw new Error(`${source}: ${bitDepth}-bit masks are not supported (class ids must fit in 8 bits)`);
  if (interlace !== 0) throw new Error(`${source}: interlaced (Adam7) masks are not supported; re-save without interlacing`);
  if (idat.length === 0 || width === 0 || height === 0) throw new Error(`${source}: PNG has no image data`);
  let raw: Buffer;
  try {
    raw = inflateSync(Buffer.concat(idat));
  } catch (e) {
    throw new Error(`${source}: corrupt PNG data (${(e as Error).message})`);
  }
  return { width, height, data: unfilter(raw, width, height, bitDepth, source) };
}

/** Reverses PNG per-row filtering and unpacks sub-byte samples. */
function unfilter(raw: Uint8Array, width: number, height: number, bitDepth: number, source: string): Uint8Array {
  const stride = Math.ceil((width * bitDepth) / 8);
  if (raw.length < height * (stride + 1)) throw new Error(`${source}: truncated PNG data`);
  const bpp = 1; // bytes per complete pixel, rounded up to 1 for sub-byte depths
  const out = new Uint8Array(width * height);
  let prev = new Uint8Array(stride);
  let cur = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const row = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? cur[i - bpp]! : 0;
      const b = prev[i]!;
      const c = i >= bpp ? prev[i - bpp]! : 0;
      let v = row[i]!;
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) v += paeth(a, b, c);
      else if (filter !== 0) throw new Error(`${source}: invalid PNG row filter ${filter} in row ${y}`);
      cur[i] = v & 255;
    }
    const perByte = 8 / bitDepth;
    const mask = (1 << bitDepth) - 1;
    for (let x = 0; x < width; x++) {
      if (bitDepth === 8) out[y * width + x] = cur[x]!;
      else {
        const byte = cur[Math.floor(x / perByte)]!;
        const shift = 8 - bitDepth * ((x % perByte) + 1);
        out[y * width + x] = (byte >> shift) & mask;
      }
    }
    [prev, cur] = [cur, prev];
  }
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}
