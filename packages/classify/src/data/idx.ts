/**
 * Reader for the IDX format of MNIST / Fashion-MNIST (`.gz` or uncompressed):
 * magic `00 00 <type> <ndims>`, then ndims big-endian uint32 sizes, then the data.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';

/** An IDX array of unsigned bytes. */
export interface IdxArray {
  /** Sizes, e.g. [60000, 28, 28] for images, [60000] for labels. */
  shape: number[];
  data: Uint8Array;
}

/** Reads an IDX file of type 0x08 (unsigned byte); gzip is detected from the content. */
export function readIdx(file: string): IdxArray {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read IDX file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = zlib.gunzipSync(bytes);
    } catch (e) {
      throw new Error(`IDX file ${file} is not a valid gzip stream (truncated download?): ${(e as Error).message}`);
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new Error(`${file} is not an IDX file (bad magic number)`);
  if (bytes[2] !== 0x08) throw new Error(`${file}: IDX element type 0x${bytes[2]!.toString(16)} is not supported (only unsigned byte, 0x08)`);
  const ndims = bytes[3]!;
  const headerLen = 4 + 4 * ndims;
  if (bytes.length < headerLen) throw new Error(`${file}: truncated IDX header`);
  const shape = Array.from({ length: ndims }, (_, i) => bytes.readUInt32BE(4 + 4 * i));
  const count = shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== headerLen + count) {
    throw new Error(`${file}: IDX header says [${shape}] = ${count} bytes but the file holds ${bytes.length - headerLen}`);
  }
  return { shape, data: new Uint8Array(bytes.buffer, bytes.byteOffset + headerLen, count) };
}

/** Encodes an unsigned-byte IDX array (used to write the shipped subset). */
export function encodeIdx(arr: IdxArray): Buffer {
  const header = Buffer.alloc(4 + 4 * arr.shape.length);
  header[2] = 0x08;
  header[3] = arr.shape.length;
  arr.shape.forEach((s, i) => header.writeUInt32BE(s, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength)]);
}
