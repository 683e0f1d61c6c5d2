import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sharedDataset } from '../src/shared-datasets.js';

describe('sharedDataset', () => {
  const saved = process.env.REFCONV_SHARED_DATASETS;
  afterEach(() => {
    if (saved === undefined) delete process.env.REFCONV_SHARED_DATASETS;
    else process.env.REFCONV_SHARED_DATASETS = saved;
  });

  it('finds a dataset in $REFCONV_SHARED_DATASETS first', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shared-'));
    fs.mkdirSync(path.join(dir, 'toyset'));
    process.env.REFCONV_SHARED_DATASETS = dir;
    expect(sharedDataset('toyset')).toBe(path.join(dir, 'toyset'));
  });

  it('names every place it looked when the dataset is missing', () => {
    process.env.REFCONV_SHARED_DATASETS = '/nonexistent-refconv';
    expect(() => sharedDataset('no-such-set')).toThrow(/dataset 'no-such-set' not found; looked in \/nonexistent-refconv\/no-such-set, .*REFCONV_SHARED_DATASETS/);
  });
});
