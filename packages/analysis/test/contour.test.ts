import { describe, expect, it } from 'vitest';
import { contourSegments, heatmapSvg } from '../src/index.js';

describe('contourSegments (marching squares)', () => {
  it('the iso-line of a cone f = |x| + |y| at level 1 is the diamond through (±1, 0), (0, ±1)', () => {
    const n = 5; // nodes at -2..2
    const grid = Array.from({ length: n * n }, (_, i) => Math.abs((i % n) - 2) + Math.abs(Math.floor(i / n) - 2));
    const segs = contourSegments(grid, n, n, 1);
    expect(segs.length).toBe(4);
    for (const [x0, y0, x1, y1] of segs) {
      // every endpoint is on the diamond |x-2| + |y-2| = 1 (f is linear along each edge, so the interpolation is exact)
      expect(Math.abs(x0 - 2) + Math.abs(y0 - 2)).toBeCloseTo(1, 12);
      expect(Math.abs(x1 - 2) + Math.abs(y1 - 2)).toBeCloseTo(1, 12);
    }
    // a plane f = x crosses level 2.5 along the vertical line x = 2.5, one segment per row of cells
    const plane = Array.from({ length: 16 }, (_, i) => i % 4);
    const ps = contourSegments(plane, 4, 4, 2.5);
    expect(ps.length).toBe(3);
    for (const s of ps) { expect(s[0]).toBeCloseTo(2.5, 12); expect(s[2]).toBeCloseTo(2.5, 12); }
    expect(contourSegments(plane, 4, 4, 10)).toEqual([]);
    expect(() => contourSegments([1, 2], 2, 2, 1)).toThrow(/2 values for a 2x2 grid/);
  });

  it('heatmapSvg draws the contour levels it is given', () => {
    const grid = Array.from({ length: 9 }, (_, i) => Math.abs((i % 3) - 1) + Math.abs(Math.floor(i / 3) - 1));
    const svg = heatmapSvg({ title: 't', panels: [{ title: 'a', k: 3, grid }], contours: [0.5, 1.5] });
    expect(svg.match(/<line /g)!.length).toBe(8);
  });
});
