/**
 * Training-curve plots: a Vega-Lite line chart rendered to SVG by vega (headless, no
 * canvas needed) and rasterised to PNG by sharp.
 */
import sharp from 'sharp';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import { writeFileAtomic } from './fs-atomic.js';

/** One line of a chart. */
export interface Series {
  /** Legend entry, e.g. `refocus seed 1`. */
  name: string;
  /** Points `[x, y]` (non-finite y values are dropped). */
  points: Array<[number, number]>;
}

/** Options of {@link lineChartPng}. */
export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Chart area in CSS pixels (default 560 x 320). */
  width?: number;
  height?: number;
  /** Rasterisation density (default 144 dpi = 2x). */
  density?: number;
  /** Let the y axis start away from zero (default true). */
  yZero?: boolean;
}

/** Renders the chart to an SVG string. */
export async function lineChartSvg(opts: LineChartOptions): Promise<string> {
  if (opts.series.length === 0) throw new Error(`lineChart '${opts.title}': no series to plot`);
  const values = opts.series.flatMap((s) => s.points.filter(([, y]) => Number.isFinite(y)).map(([x, y]) => ({ x, y, series: s.name })));
  const spec: vegaLite.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: opts.title,
    width: opts.width ?? 560,
    height: opts.height ?? 320,
    background: 'white',
    data: { values },
    mark: { type: 'line', point: values.length <= 200 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: opts.xLabel },
      y: { field: 'y', type: 'quantitative', title: opts.yLabel, scale: { zero: opts.yZero ?? false } },
      color: { field: 'series', type: 'nominal', title: null },
    },
  };
  const compiled = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Renders the chart and writes it as a PNG file (atomically). */
export async function lineChartPng(file: string, opts: LineChartOptions): Promise<void> {
  const svg = await lineChartSvg(opts);
  const png = await sharp(Buffer.from(svg), { density: opts.density ?? 144 }).png().toBuffer();
  writeFileAtomic(file, png);
}
