/**
 * Image size from the file header (PNG IHDR, JPEG SOFn), read with a few small reads, so a split
 * can be checked image-by-mask when it is opened without decoding every image.
 */
import { closeSync, openSync, readSync } from 'node:fs';

const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

function readAt(fd: number, pos: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  const got = readSync(fd, b, 0, n, pos);
  return b.subarray(0, got);
}

/**
 * `{ width, height }` of a PNG or JPEG file from its header; `undefined` for other formats (their
 * size is checked when the image is decoded).
 * @throws naming the file when it cannot be read or its PNG/JPEG header is truncated or corrupt
 */
export function imageSizeFromHeader(path: string): { width: number; height: number } | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new Error(`cannot read image ${path}: ${(e as Error).message}`);
  }
  try {
    const head = readAt(fd, 0, 32);
    if (head.length >= 8 && PNG_SIGNATURE.every((b, i) => head[i] === b)) {
      if (head.length < 24 || head.toString('latin1', 12, 16) !== 'IHDR') throw new Error(`image ${path}: truncated PNG header (no IHDR)`);
      return { width: head.readUInt32BE(16), height: head.readUInt32BE(20) };
    }
    if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8) {
      let pos = 2;
      for (;;) {
        const m = readAt(fd, pos, 9);
        if (m.length < 4) throw new Error(`image ${path}: JPEG ends before its frame header (truncated?)`);
        if (m[0] !== 0xff) throw new Error(`image ${path}: corrupt JPEG (no marker at byte ${pos})`);
        const marker = m[1]!;
        if (marker === 0xff) {
          pos++; // fill byte
          continue;
        }
        if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
          pos += 2; // markers without a length
          continue;
        }
        const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
        if (isSof) {
          if (m.length < 9) throw new Error(`image ${path}: JPEG ends inside its frame header (truncated?)`);
          return { width: m.readUInt16BE(7), height: m.readUInt16BE(5) };
        }
        if (marker === 0xd9 || marker === 0xda) throw new Error(`image ${path}: corrupt JPEG (no frame header before the scan)`);
        pos += 2 + m.readUInt16BE(2);
      }
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}
