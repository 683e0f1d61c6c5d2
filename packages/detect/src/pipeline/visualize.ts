/** Draws detections on images (sharp + SVG overlay) and writes PNGs. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import type { DetectionRecord } from '../data/dataset.js';
import type { Detections } from '../models/detector.js';

const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#46f0f0', '#f032e6', '#bcf60c', '#008080', '#9a6324'];

const escapeXml = (s: string): string => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** SVG with one rectangle and a "name score" tag per detection at or above `minScore`. */
export function detectionsSvg(width: number, height: number, d: Detections, names: string[], minScore = 0.3): string {
  const parts: string[] = [];
  d.scores.forEach((score, i) => {
    if (score < minScore) return;
    const [x1, y1, x2, y2] = Array.from(d.boxes.subarray(4 * i, 4 * i + 4)).map((v) => Math.round(v * 10) / 10);
    const color = PALETTE[d.labels[i]! % PALETTE.length]!;
    const text = `${escapeXml(names[d.labels[i]!] ?? String(d.labels[i]))} ${score.toFixed(2)}`;
    const ty = Math.max(y1! - 3, 12);
    parts.push(
      `<rect x="${x1}" y="${y1}" width="${x2! - x1!}" height="${y2! - y1!}" fill="none" stroke="${color}" stroke-width="2"/>`,
      `<rect x="${x1}" y="${ty - 11}" width="${text.length * 6.5 + 4}" height="14" fill="${color}" fill-opacity="0.8"/>`,
      `<text x="${x1! + 2}" y="${ty}" font-family="DejaVu Sans, sans-serif" font-size="11" fill="white">${text}</text>`,
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

/** Writes `<outDir>/<image name>.png` with the detections drawn; returns the path. */
export async function writeVisualization(record: DetectionRecord, d: Detections, names: string[], outDir: string, minScore = 0.3): Promise<string> {
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `${path.parse(record.file).name}.png`);
  const { width, height } = await sharp(record.file).metadata();
  if (!width || !height) throw new Error(`cannot read the size of ${record.file}`);
  const svg = Buffer.from(detectionsSvg(width, height, d, names, minScore));
  await sharp(record.file).composite([{ input: svg, top: 0, left: 0 }]).png().toFile(file);
  return file;
}
