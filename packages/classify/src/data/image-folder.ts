/**
 * ImageNet / torchvision `ImageFolder` layout:
 * ```
 * root/train/<class>/*.JPEG
 * root/val/<class>/*.JPEG                     (folders), or
 * root/val/*.JPEG + a label file              (flat)
 * ```
 * Class index order = sorted train folder names (as torchvision), saved with checkpoints.
 * Flat val label files: a CSV with a header `ImageId,<label column>` whose label is a class
 * folder name (the first token is used, so Kaggle's `LOC_val_solution.csv` works), or the
 * ILSVRC2012 devkit list `ILSVRC2012_validation_ground_truth.txt` (one 1-based class id per
 * line for the sorted image files; ids follow the sorted synset order), or a text file of
 * `<file> <label>` lines (label = class name or 0-based index).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ClassificationData, Split } from './dataset.js';

/** File extensions treated as images (torchvision's IMG_EXTENSIONS). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp'];

const isImage = (f: string) => IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase());
const DEFAULT_LABEL_FILES = ['val.csv', 'LOC_val_solution.csv', 'ILSVRC2012_validation_ground_truth.txt', 'val_labels.txt'];

interface Sample {
  file: string;
  label: number;
}

function listDirs(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort();
}

function listImages(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isFile() && isImage(d.name))
    .map((d) => d.name)
    .sort();
}

function samplesSplit(samples: Sample[]): Split {
  return {
    size: samples.length,
    source: (i) => samples[i]!.file,
    label: (i) => samples[i]!.label,
    describe: (i) => samples[i]!.file,
  };
}

function classFolderSamples(dir: string, classNames: string[], what: string): Sample[] {
  const index = new Map(classNames.map((c, i) => [c, i]));
  const samples: Sample[] = [];
  for (const cls of listDirs(dir)) {
    const label = index.get(cls);
    if (label === undefined) throw new Error(`${what} ${path.join(dir, cls)}: class '${cls}' does not exist in the training set`);
    for (const f of listImages(path.join(dir, cls))) samples.push({ file: path.join(dir, cls, f), label });
  }
  return samples;
}

function parseLabel(value: string, classNames: string[], where: string, oneBased: boolean): number {
  const byName = classNames.indexOf(value);
  if (byName >= 0) return byName;
  if (/^\d+$/.test(value)) {
    const idx = Number(value) - (oneBased ? 1 : 0);
    if (idx >= 0 && idx < classNames.length) return idx;
    throw new Error(`${where}: label ${value} is outside ${oneBased ? '1' : '0'}..${classNames.length - (oneBased ? 0 : 1)}`);
  }
  throw new Error(`${where}: unknown class '${value}'`);
}

/** Reads a flat val folder's labels (see module doc for the accepted files). */
export function readFlatValLabels(valDir: string, labelFile: string, classNames: string[]): Sample[] {
  const files = listImages(valDir);
  if (files.length === 0) throw new Error(`${valDir} has no images (${IMAGE_EXTENSIONS.join(' ')})`);
  const text = fs.readFileSync(labelFile, 'utf8');
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const stem = (f: string) => path.basename(f, path.extname(f));
  const byStem = new Map(files.map((f) => [stem(f), f]));
  const samples: Sample[] = [];
  const lookup = (id: string, where: string) => {
    const f = byStem.get(stem(id)) ?? byStem.get(id);
    if (!f) throw new Error(`${where}: image '${id}' not found in ${valDir}`);
    return path.join(valDir, f);
  };
  if (labelFile.toLowerCase().endsWith('.csv')) {
    const header = lines[0]!.split(',').map((s) => s.trim());
    if (header.length < 2 || !/^(image_?id|file(name)?|image)$/i.test(header[0]!)) {
      throw new Error(`${labelFile}: expected a header 'ImageId,<label>', got '${lines[0]}'`);
    }
    lines.slice(1).forEach((line, i) => {
      const where = `${labelFile}:${i + 2}`;
      const comma = line.indexOf(',');
      if (comma < 0) throw new Error(`${where}: expected 'ImageId,label', got '${line}'`);
      const label = line.slice(comma + 1).trim().split(/\s+/)[0]!;
      samples.push({ file: lookup(line.slice(0, comma).trim(), where), label: parseLabel(label, classNames, where, false) });
    });
  } else if (lines.every((l) => /^\s*\d+\s*$/.test(l))) {
    // ILSVRC2012 devkit ground truth: one 1-based id per sorted val image
    if (lines.length !== files.length) throw new Error(`${labelFile}: ${lines.length} labels for ${files.length} images in ${valDir}`);
    lines.forEach((l, i) => samples.push({ file: path.join(valDir, files[i]!), label: parseLabel(l.trim(), classNames, `${labelFile}:${i + 1}`, true) }));
  } else {
    lines.forEach((line, i) => {
      const where = `${labelFile}:${i + 1}`;
      const parts = line.trim().split(/[\s,]+/);
      if (parts.length < 2) throw new Error(`${where}: expected '<file> <label>', got '${line}'`);
      samples.push({ file: lookup(parts[0]!, where), label: parseLabel(parts[1]!, classNames, where, false) });
    });
  }
  return samples;
}

/** Options of {@link loadImageFolder}. */
export interface ImageFolderOptions {
  /** Label file for a flat val folder (default: one of val.csv, LOC_val_solution.csv, ILSVRC2012_validation_ground_truth.txt, val_labels.txt in root or val/). */
  valLabels?: string;
  /** Name of the validation folder (default `val`). */
  valDir?: string;
}

/** Reads an ImageFolder dataset (see module doc); errors name the folder and the problem. */
export function loadImageFolder(root: string, opts: ImageFolderOptions = {}): ClassificationData {
  const trainDir = path.join(root, 'train');
  const valDir = path.join(root, opts.valDir ?? 'val');
  if (!fs.existsSync(trainDir) || !fs.statSync(trainDir).isDirectory()) {
    throw new Error(`${root}: unknown dataset layout: expected ${trainDir}/<class>/*.jpg (ImageFolder) or the Fashion-MNIST IDX files`);
  }
  const classNames = listDirs(trainDir);
  if (classNames.length < 2) throw new Error(`${trainDir}: found ${classNames.length} class folder(s); a classifier needs at least 2`);
  const train = classFolderSamples(trainDir, classNames, 'train');
  if (train.length === 0) throw new Error(`${trainDir}: no images (${IMAGE_EXTENSIONS.join(' ')}) in any class folder`);
  const empty = classNames.filter((c) => !train.some((s) => s.label === classNames.indexOf(c)));
  if (empty.length) throw new Error(`${trainDir}: class folder(s) with no images: ${empty.join(', ')}`);
  if (!fs.existsSync(valDir)) throw new Error(`${root}: no validation folder ${valDir}`);
  let val: Sample[];
  if (listDirs(valDir).length > 0) {
    val = classFolderSamples(valDir, classNames, 'val');
  } else {
    const labelFile = opts.valLabels ?? DEFAULT_LABEL_FILES.flatMap((f) => [path.join(root, f), path.join(valDir, f)]).find((f) => fs.existsSync(f));
    if (!labelFile) {
      throw new Error(`${valDir} is flat (no class folders) and no label file was found: pass --val-labels or add one of ${DEFAULT_LABEL_FILES.join(', ')}`);
    }
    val = readFlatValLabels(valDir, labelFile, classNames);
  }
  if (val.length === 0) throw new Error(`${valDir}: no validation images`);
  return { name: path.basename(path.resolve(root)), root, classNames, channels: 3, train: samplesSplit(train), val: samplesSplit(val) };
}
