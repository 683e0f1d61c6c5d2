import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { lineChartPng, lineChartSvg } from '../src/plot.js';

describe('line charts', () => {
  it('renders an SVG with the title and legend and writes a PNG', async () => {
    const opts = {
      title: 'val top-1',
      xLabel: 'epoch',
      yLabel: 'top-1 (%)',
      series: [
        { name: 'baseline', points: [[1, 80], [2, 85], [3, 87]] as Array<[number, number]> },
        { name: 'refocus', points: [[1, 81], [2, 86], [3, NaN]] as Array<[number, number]> },
      ],
    };
    const svg = await lineChartSvg(opts);
    expect(svg).toContain('val top-1');
    expect(svg).toContain('refocus');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'engine-plot-')), 'curve.png');
    await lineChartPng(file, opts);
    const meta = await sharp(file).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width).toBeGreaterThan(600);
    expect(meta.height).toBeGreaterThan(300);
  });

  it('refuses an empty chart', async () => {
    await expect(lineChartSvg({ title: 't', xLabel: 'x', yLabel: 'y', series: [] })).rejects.toThrow(/no series/);
  });
});
