import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { loadFashionMnist } from '../src/data/fashion-mnist.js';
import { encodeIdx, readIdx } from '../src/data/idx.js';
import { loadImageFolder } from '../src/data/image-folder.js';
import { openDataset } from '../src/data/open.js';
import { tmpDir, writeImage, writeTinyFashionMnist } from './helpers.js';

describe('IDX reader', () => {
  it('reads raw and gzipped files with the header shape (hand-made bytes)', () => {
    const dir = tmpDir('cls-idx-');
    // magic 0 0 8 2, dims 2 x 3, then 6 bytes
    const bytes = Buffer.from([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]);
    fs.writeFileSync(path.join(dir, 'a'), bytes);
    fs.writeFileSync(path.join(dir, 'a.gz'), zlib.gzipSync(bytes));
    for (const f of ['a', 'a.gz']) {
      const r = readIdx(path.join(dir, f));
      expect(r.shape).toEqual([2, 3]);
      expect(Array.from(r.data)).toEqual([1, 2, 3, 4, 5, 6]);
    }
    expect(Buffer.compare(encodeIdx({ shape: [2, 3], data: new Uint8Array([1, 2, 3, 4, 5, 6]) }), bytes)).toBe(0);
  });

  it('names the file for bad magic, truncation and bad gzip', () => {
    const dir = tmpDir('cls-idx-');
    fs.writeFileSync(path.join(dir, 'magic'), Buffer.from([1, 2, 3, 4]));
    fs.writeFileSync(path.join(dir, 'short'), Buffer.from([0, 0, 8, 1, 0, 0, 0, 9, 1, 2]));
    fs.writeFileSync(path.join(dir, 'bad.gz'), Buffer.from([0x1f, 0x8b, 1, 2, 3]));
    expect(() => readIdx(path.join(dir, 'magic'))).toThrow(/magic.*bad magic/);
    expect(() => readIdx(path.join(dir, 'short'))).toThrow(/short: IDX header says \[9\] = 9 bytes but the file holds 2/);
    expect(() => readIdx(path.join(dir, 'bad.gz'))).toThrow(/bad\.gz is not a valid gzip/);
  });

  it('loads a Fashion-MNIST folder (gz or raw) as 28x28 grey images', () => {
    for (const gzip of [true, false]) {
      const dir = tmpDir('cls-fm-');
      writeTinyFashionMnist(dir, 20, 10, gzip);
      const d = loadFashionMnist(dir);
      expect([d.train.size, d.val.size, d.channels, d.classNames.length]).toEqual([20, 10, 1, 10]);
      expect(d.train.label(13)).toBe(3);
      const src = d.train.source(13) as { width: number; height: number; channels: number; data: Uint8Array };
      expect([src.width, src.height, src.channels, src.data.length]).toEqual([28, 28, 1, 784]);
      expect(openDataset(dir).name).toBe('fashion-mnist');
    }
    const empty = tmpDir('cls-fm-');
    fs.writeFileSync(path.join(empty, 'train-images-idx3-ubyte.gz'), '');
    expect(() => loadFashionMnist(empty)).toThrow(/missing train-labels-idx1-ubyte\[\.gz\]/);
  });
});

describe('ImageFolder', () => {
  it('orders classes by sorted folder name and reads folder-style val', async () => {
    const root = tmpDir('cls-if-');
    for (const [cls, n] of [['zebra', 2], ['ant', 3]] as const) for (let i = 0; i < n; i++) await writeImage(path.join(root, 'train', cls, `${i}.png`), 10 * i);
    await writeImage(path.join(root, 'val', 'zebra', 'v.JPG.png'), 5);
    fs.writeFileSync(path.join(root, 'train', 'ant', 'notes.txt'), 'not an image');
    const d = loadImageFolder(root);
    expect(d.classNames).toEqual(['ant', 'zebra']);
    expect(d.train.size).toBe(5);
    expect([0, 1, 2, 3, 4].map((i) => d.train.label(i))).toEqual([0, 0, 0, 1, 1]);
    expect(d.val.size).toBe(1);
    expect(d.val.label(0)).toBe(1);
  });

  it('reads a flat val folder with a CSV, an ILSVRC ground-truth list, or file/label lines', async () => {
    const root = tmpDir('cls-if-');
    for (const cls of ['a', 'b', 'c']) await writeImage(path.join(root, 'train', cls, 'x.png'), 1);
    for (const f of ['v1.png', 'v2.png', 'v3.png']) await writeImage(path.join(root, 'val', f), 2);
    fs.writeFileSync(path.join(root, 'val.csv'), 'ImageId,PredictionString\nv2,c 1 2 3 4\nv1,a\nv3,b 0 0 1 1\n');
    let d = loadImageFolder(root);
    const labelOf = (name: string) => d.val.label([0, 1, 2].find((i) => d.val.describe(i).endsWith(name))!);
    expect([labelOf('v1.png'), labelOf('v2.png'), labelOf('v3.png')]).toEqual([0, 2, 1]);
    fs.rmSync(path.join(root, 'val.csv'));
    fs.writeFileSync(path.join(root, 'ILSVRC2012_validation_ground_truth.txt'), '3\n1\n2\n'); // 1-based, sorted files
    d = loadImageFolder(root);
    expect([labelOf('v1.png'), labelOf('v2.png'), labelOf('v3.png')]).toEqual([2, 0, 1]);
    const txt = path.join(root, 'mine.txt');
    fs.writeFileSync(txt, 'v1.png 1\nv2.png c\nv3.png 0\n');
    d = loadImageFolder(root, { valLabels: txt });
    expect([labelOf('v1.png'), labelOf('v2.png'), labelOf('v3.png')]).toEqual([1, 2, 0]);
    fs.writeFileSync(txt, 'v1.png 1\nv9.png c\n');
    expect(() => loadImageFolder(root, { valLabels: txt })).toThrow(/mine\.txt:2: image 'v9\.png' not found/);
    fs.writeFileSync(txt, 'v1.png dog\n');
    expect(() => loadImageFolder(root, { valLabels: txt })).toThrow(/mine\.txt:1: unknown class 'dog'/);
  });

  it('gives clear errors for unknown layouts and empty datasets', async () => {
    const root = tmpDir('cls-if-');
    expect(() => openDataset(path.join(root, 'nope'))).toThrow(/does not exist/);
    expect(() => openDataset(root)).toThrow(/unknown dataset layout/);
    fs.mkdirSync(path.join(root, 'train', 'a'), { recursive: true });
    fs.mkdirSync(path.join(root, 'train', 'b'), { recursive: true });
    expect(() => openDataset(root)).toThrow(/no images/);
    await writeImage(path.join(root, 'train', 'a', '1.png'), 1);
    expect(() => openDataset(root)).toThrow(/with no images: b/);
    await writeImage(path.join(root, 'train', 'b', '1.png'), 1);
    fs.mkdirSync(path.join(root, 'val'));
    await writeImage(path.join(root, 'val', '1.png'), 1);
    expect(() => openDataset(root)).toThrow(/flat.*no label file/);
  });
});
