/**
 * Writes the Fashion-MNIST copy shipped in `datasets/fashion-mnist`: the first N training
 * images (default 20,000) and the full 10,000-image test set, gzip-compressed IDX.
 * Usage: node --conditions=@refconv/source --import tsx tools/make-fashion-mnist-subset.ts [src] [dst] [N]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { encodeIdx, readIdx } from '../src/data/idx.js';

const [src = '/usr/share/datasets/fashion-mnist', dst = '../../datasets/fashion-mnist', nArg = '20000'] = process.argv.slice(2);
const n = Number(nArg);
fs.mkdirSync(dst, { recursive: true });
for (const [base, limit] of [['train-images-idx3-ubyte', n], ['train-labels-idx1-ubyte', n], ['t10k-images-idx3-ubyte', Infinity], ['t10k-labels-idx1-ubyte', Infinity]] as const) {
  const arr = readIdx(path.join(src, `${base}.gz`));
  const count = Math.min(limit, arr.shape[0]!);
  const per = arr.shape.slice(1).reduce((a, b) => a * b, 1);
  const out = encodeIdx({ shape: [count, ...arr.shape.slice(1)], data: arr.data.subarray(0, count * per) });
  fs.writeFileSync(path.join(dst, `${base}.gz`), zlib.gzipSync(out, { level: 9 }));
  console.log(`${base}: ${count} of ${arr.shape[0]}`);
}
