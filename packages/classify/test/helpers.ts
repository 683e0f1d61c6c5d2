/** Test helpers: tiny on-disk datasets. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import { encodeIdx } from '../src/data/idx.js';

export const tmpDir = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

/** Writes a solid-colour PNG (size x size) whose colour encodes `value`. */
export async function writeImage(file: string, value: number, size = 12): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const px = Buffer.alloc(size * size * 3, value);
  await sharp(px, { raw: { width: size, height: size, channels: 3 } }).png().toFile(file);
}

/** A Fashion-MNIST-shaped IDX folder with `n` train and `m` test images whose label is (brightness class). */
export function writeTinyFashionMnist(dir: string, n: number, m: number, gzip = true): void {
  fs.mkdirSync(dir, { recursive: true });
  const write = (base: string, shape: number[], data: Uint8Array) => {
    const bytes = encodeIdx({ shape, data });
    fs.writeFileSync(path.join(dir, gzip ? `${base}.gz` : base), gzip ? zlib.gzipSync(bytes) : bytes);
  };
  for (const [prefix, count] of [['train', n], ['t10k', m]] as const) {
    const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
    // class c: left half bright at column pattern c -> learnable but not trivial
    const images = new Uint8Array(count * 28 * 28);
    for (let i = 0; i < count; i++) {
      const c = labels[i]!;
      for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) images[i * 784 + y * 28 + x] = (x + y * c) % 10 === c ? 255 : (i * 7 + x * y) % 40;
    }
    write(`${prefix}-images-idx3-ubyte`, [count, 28, 28], images);
    write(`${prefix}-labels-idx1-ubyte`, [count], labels);
  }
}
