/**
 * Iso-lines of a grid by marching squares (linear interpolation along cell edges; a saddle cell is
 * resolved by the mean of its four corners).
 */

/** A segment `[x0, y0, x1, y1]` in grid coordinates (x = column index, y = row index). */
export type Segment = [number, number, number, number];

/**
 * Segments of the iso-line `value = level` of a row-major `[rows * cols]` grid whose nodes are at
 * integer (column, row) coordinates.
 */
export function contourSegments(grid: ArrayLike<number>, cols: number, rows: number, level: number): Segment[] {
  if (grid.length !== cols * rows) throw new Error(`contourSegments: ${grid.length} values for a ${cols}x${rows} grid`);
  const v = (x: number, y: number): number => grid[y * cols + x]!;
  const out: Segment[] = [];
  // point on the edge between nodes a (value va) and b (value vb), where the level is crossed
  const cut = (ax: number, ay: number, va: number, bx: number, by: number, vb: number): [number, number] => {
    const t = (level - va) / (vb - va);
    return [ax + t * (bx - ax), ay + t * (by - ay)];
  };
  for (let y = 0; y + 1 < rows; y++) {
    for (let x = 0; x + 1 < cols; x++) {
      const tl = v(x, y), tr = v(x + 1, y), br = v(x + 1, y + 1), bl = v(x, y + 1);
      if (![tl, tr, br, bl].every(Number.isFinite)) continue;
      const idx = (tl >= level ? 8 : 0) | (tr >= level ? 4 : 0) | (br >= level ? 2 : 0) | (bl >= level ? 1 : 0);
      if (idx === 0 || idx === 15) continue;
      const top = (): [number, number] => cut(x, y, tl, x + 1, y, tr);
      const right = (): [number, number] => cut(x + 1, y, tr, x + 1, y + 1, br);
      const bottom = (): [number, number] => cut(x, y + 1, bl, x + 1, y + 1, br);
      const left = (): [number, number] => cut(x, y, tl, x, y + 1, bl);
      const seg = (a: [number, number], b: [number, number]) => out.push([a[0], a[1], b[0], b[1]]);
      const centreHigh = (tl + tr + br + bl) / 4 >= level;
      switch (idx) {
        case 1: case 14: seg(left(), bottom()); break;
        case 2: case 13: seg(bottom(), right()); break;
        case 3: case 12: seg(left(), right()); break;
        case 4: case 11: seg(top(), right()); break;
        case 6: case 9: seg(top(), bottom()); break;
        case 7: case 8: seg(left(), top()); break;
        case 5: // tr and bl high
          if (centreHigh) { seg(left(), top()); seg(bottom(), right()); } else { seg(top(), right()); seg(left(), bottom()); }
          break;
        case 10: // tl and br high
          if (centreHigh) { seg(top(), right()); seg(left(), bottom()); } else { seg(left(), top()); seg(bottom(), right()); }
          break;
      }
    }
  }
  return out;
}
