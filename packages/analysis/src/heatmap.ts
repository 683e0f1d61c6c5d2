/**
 * K x K heatmaps with the value written in each cell, several panels side by side, as an SVG
 * rasterised to PNG by sharp (no canvas or browser needed).
 */
import sharp from 'sharp';
import { writeFileAtomic } from '@refconv/engine';
import { contourSegments } from './contour.js';

/** One panel: a row-major `[k * k]` grid. */
export interface HeatmapPanel {
  title: string;
  k: number;
  grid: number[];
}

/** Options of {@link heatmapSvg}. */
export interface HeatmapOptions {
  title: string;
  panels: HeatmapPanel[];
  /** Colour scale range (default: smallest .. largest value over all panels, one scale for all). */
  min?: number;
  max?: number;
  /** Cell size in pixels (default 56). */
  cell?: number;
  /** Digits after the decimal point in the cells (default 2). */
  digits?: number;
  /** Draw iso-lines at these levels (marching squares over the cell centres), same levels in every panel. */
  contours?: number[];
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** White -> dark blue; `t` in [0, 1]. */
function colour(t: number): string {
  const u = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0));
  const lerp = (a: number, b: number): number => Math.round(a + (b - a) * u);
  return `rgb(${lerp(255, 8)},${lerp(255, 48)},${lerp(255, 107)})`;
}

/** Renders the panels to an SVG string (one shared colour scale). */
export function heatmapSvg(opts: HeatmapOptions): string {
  if (opts.panels.length === 0) throw new Error(`heatmap '${opts.title}': no panels`);
  for (const p of opts.panels) {
    if (p.grid.length !== p.k * p.k) throw new Error(`heatmap '${opts.title}': panel '${p.title}' has ${p.grid.length} values, expected ${p.k}x${p.k}`);
  }
  const cell = opts.cell ?? 56;
  const digits = opts.digits ?? 2;
  const all = opts.panels.flatMap((p) => p.grid).filter(Number.isFinite);
  const lo = opts.min ?? Math.min(...all);
  const hi = opts.max ?? Math.max(lo + 1e-12, ...all);
  const pad = 16, top = 56;
  const panelW = Math.max(...opts.panels.map((p) => p.k)) * cell;
  const width = pad + opts.panels.length * (panelW + pad);
  const height = top + panelW + pad;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${pad}" y="22" font-size="16" font-weight="bold">${esc(opts.title)}</text>`,
  ];
  opts.panels.forEach((p, i) => {
    const x0 = pad + i * (panelW + pad);
    parts.push(`<text x="${x0}" y="${top - 10}" font-size="13">${esc(p.title)}</text>`);
    for (let y = 0; y < p.k; y++) for (let x = 0; x < p.k; x++) {
      const v = p.grid[y * p.k + x]!;
      const t = (v - lo) / (hi - lo);
      const cx = x0 + x * cell, cy = top + y * cell;
      parts.push(`<rect x="${cx}" y="${cy}" width="${cell}" height="${cell}" fill="${colour(t)}" stroke="#888" stroke-width="0.5"/>`);
      parts.push(`<text x="${cx + cell / 2}" y="${cy + cell / 2 + 5}" font-size="${Math.round(cell / 4)}" text-anchor="middle" fill="${t > 0.55 ? 'white' : 'black'}">${v.toFixed(digits)}</text>`);
    }
    for (const level of opts.contours ?? []) {
      for (const [ax, ay, bx, by] of contourSegments(p.grid, p.k, p.k, level)) {
        const px = (u: number): number => x0 + (u + 0.5) * cell, py = (u: number): number => top + (u + 0.5) * cell;
        parts.push(`<line x1="${px(ax).toFixed(1)}" y1="${py(ay).toFixed(1)}" x2="${px(bx).toFixed(1)}" y2="${py(by).toFixed(1)}" stroke="#d62728" stroke-width="1.5"/>`);
      }
    }
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Renders the heatmap and writes it as a PNG (atomically). */
export async function heatmapPng(file: string, opts: HeatmapOptions): Promise<void> {
  const png = await sharp(Buffer.from(heatmapSvg(opts)), { density: 144 }).png().toBuffer();
  writeFileAtomic(file, png);
}
