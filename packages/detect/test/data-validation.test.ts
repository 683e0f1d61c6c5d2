/**
 * Issue 15, "no silent failure" for detection data: every case is a fixture written by the test
 * into a temp dir, opened with `openDataset` (what the CLIs call before the first training step),
 * and compared with boxes / counts / messages written out by hand.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DatasetValidationError, formatDatasetSummary, openDataset, type DetectionDataset } from '../src/index.js';

type Obj = { name: string; box: (number | string)[]; difficult?: number };

function vocXml(file: string, width: number, height: number, objects: Obj[]): string {
  const objs = objects
    .map(
      (o) =>
        `\t<object>\n\t\t<name>${o.name}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n\t\t<difficult>${o.difficult ?? 0}</difficult>\n` +
        `\t\t<bndbox>\n\t\t\t<xmin>${o.box[0]}</xmin>\n\t\t\t<ymin>${o.box[1]}</ymin>\n\t\t\t<xmax>${o.box[2]}</xmax>\n\t\t\t<ymax>${o.box[3]}</ymax>\n\t\t</bndbox>\n\t</object>\n`,
    )
    .join('');
  return `<annotation>\n\t<folder>JPEGImages</folder>\n\t<filename>${file}.jpg</filename>\n\t<size>\n\t\t<width>${width}</width>\n\t\t<height>${height}</height>\n\t\t<depth>3</depth>\n\t</size>\n${objs}</annotation>\n`;
}

/** A VOC root with the given annotation texts per split; returns the root. */
function vocRoot(splits: Record<string, Record<string, string>>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'detect-voc-'));
  fs.mkdirSync(path.join(root, 'Annotations'));
  fs.mkdirSync(path.join(root, 'ImageSets', 'Main'), { recursive: true });
  fs.mkdirSync(path.join(root, 'JPEGImages'));
  for (const [split, files] of Object.entries(splits)) {
    for (const [id, xml] of Object.entries(files)) fs.writeFileSync(path.join(root, 'Annotations', `${id}.xml`), xml);
    fs.writeFileSync(path.join(root, 'ImageSets', 'Main', `${split}.txt`), Object.keys(files).join('\n') + '\n');
  }
  return root;
}

const cell = (name: string, i: number): Obj => ({ name, box: [10 + i, 20 + i, 40 + i, 60 + i] });
const nineteen = Array.from({ length: 19 }, (_, i) => cell(i % 3 === 0 ? 'WBC' : 'RBC', i));

function errorOf(f: () => unknown): DatasetValidationError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DatasetValidationError);
    return e as DatasetValidationError;
  }
  throw new Error('expected a DatasetValidationError');
}

const boxes = (ds: DetectionDataset, i = 0) => Array.from(ds.records[i]!.boxes);

describe('VOC: XML read by a real parser, every record checked when opened', () => {
  it('a file truncated inside an <object> (19 objects -> cut after 2) is an error, not 2 boxes', () => {
    const full = vocXml('a', 640, 480, nineteen);
    const cut = full.slice(0, full.indexOf('<object>', full.indexOf('<object>', full.indexOf('<object>') + 1) + 1) + 30);
    const root = vocRoot({ train: { a: cut, b: vocXml('b', 640, 480, [cell('RBC', 0)]) } });
    const file = path.join(root, 'Annotations', 'a.xml');
    const e = errorOf(() => openDataset(root, { split: 'train' }));
    expect(e.problems).toEqual([`${file}: truncated or unterminated XML: <annotation>, <object> never closed before the end of the file`]);
    expect(e.message).toContain(`${root} (train): 1 problem(s) in the annotations, found when the split was opened:`);
    // the complete file reads all 19
    const ok = vocRoot({ train: { a: full } });
    expect(openDataset(ok, { split: 'train' }).records[0]!.labels).toHaveLength(19);
  });

  it('a closing tag cut short is an error naming file, line and column', () => {
    const full = vocXml('a', 640, 480, [cell('RBC', 0)]);
    const root = vocRoot({ train: { a: full.replace('</xmax>', '</xma') } });
    const e = errorOf(() => openDataset(root, { split: 'train' }));
    expect(e.problems[0]).toMatch(new RegExp(`^${path.join(root, 'Annotations', 'a.xml')}: not well-formed XML \\(line 17, column \\d+\\): `));
  });

  it('boxes partly outside are clipped, outside / zero-area boxes dropped, all counted', () => {
    const root = vocRoot({
      train: {
        a: vocXml('a', 100, 80, [
          { name: 'RBC', box: [10, 10, 50, 50] }, // kept as is
          { name: 'RBC', box: [-5, 70, 120, 95] }, // partly outside: clipped to [0, 70, 100, 80]
          { name: 'WBC', box: [150, 10, 170, 30] }, // entirely outside: dropped
          { name: 'WBC', box: [30, 30, 30, 60] }, // zero width: dropped
          { name: 'WBC', box: [0, 0, 100, 80], difficult: 1 }, // the whole image, difficult: kept as crowd
        ]),
      },
    });
    const ds = openDataset(root, { split: 'train' });
    expect(boxes(ds)).toEqual([10, 10, 50, 50, 0, 70, 100, 80, 0, 0, 100, 80]);
    expect(Array.from(ds.records[0]!.labels)).toEqual([0, 0, 1]);
    expect(Array.from(ds.records[0]!.iscrowd)).toEqual([0, 0, 1]);
    expect(Array.from(ds.records[0]!.areas)).toEqual([1600, 1000, 8000]);
    expect(ds.summary).toEqual({
      images: 1,
      boxesRead: 5,
      boxesKept: 3,
      clipped: 1,
      droppedZeroArea: 1,
      droppedOutside: 1,
      droppedUnknownClass: 0,
      perClass: { RBC: 2, WBC: 1 },
      classesFrom: 'the annotations of split train',
    });
    const file = path.join(root, 'Annotations', 'a.xml');
    expect(ds.warnings).toEqual([
      `${file} object 2 (RBC): box [-5, 70, 120, 95] clipped to the 100x80 image: [0, 70, 100, 80]`,
      `${file} object 3 (WBC): box [150, 10, 170, 30] lies outside the 100x80 image, dropped`,
      `${file} object 4 (WBC): degenerate box [30, 30, 30, 60] (zero width or height) dropped`,
    ]);
    expect(formatDatasetSummary(ds.source, ds.summary!)).toBe(
      `${root} (train): 1 images, 5 boxes read, 3 kept; clipped to the image 1; dropped 1 zero-area, 1 outside the image, 0 of unknown classes; classes (from the annotations of split train): RBC 2, WBC 1`,
    );
  });

  it('missing fields, non-numeric coordinates and xmax < xmin: every problem of the split in one error', () => {
    const root = vocRoot({
      train: {
        a: vocXml('a', 100, 80, [cell('RBC', 0), { name: 'RBC', box: [1, 2, '12px', 9] }, { name: 'WBC', box: [50, 5, 40, 9] }]),
        b: vocXml('b', 100, 80, [cell('RBC', 0)]).replace('<xmax>40</xmax>', '').replace('<height>80</height>', '<height></height>'),
        c: vocXml('c', 100, 80, [cell('RBC', 0)]).replace('<name>RBC</name>', ''),
      },
    });
    const f = (id: string) => path.join(root, 'Annotations', `${id}.xml`);
    const e = errorOf(() => openDataset(root, { split: 'train' }));
    expect(e.problems).toEqual([
      `${f('a')} object 2 (RBC): <bndbox>/<xmax> is not a number: '12px'`,
      `${f('a')} object 3 (WBC): <bndbox> xmax 40 < xmin 50`,
      `${f('b')}: <size>/<height> must be a positive number, got ''`,
      `${f('b')} object 1 (RBC): <bndbox>/<xmax> missing`,
      `${f('c')} object 1: <name> missing`,
    ]);
  });

  const classes = ['Platelets', 'RBC', 'WBC'];
  const withTypo = () =>
    vocRoot({
      train: { t1: vocXml('t1', 100, 80, [cell('RBC', 0), cell('rbc', 1), cell('WBC', 2)]) },
      test: { s1: vocXml('s1', 100, 80, [cell('Platelets', 0), cell('rbc', 1)]) },
    });

  it('a class name outside --classes is an error in the training split and in the test split alike', () => {
    const root = withTypo();
    for (const [split, id, obj] of [['train', 't1', 2], ['test', 's1', 2]] as const) {
      const e = errorOf(() => openDataset(root, { split, classes }));
      expect(e.problems).toEqual([
        `${path.join(root, 'Annotations', `${id}.xml`)} object ${obj} (rbc): <name> 'rbc' is not in the class list [Platelets, RBC, WBC] (from --classes); pass --drop-unknown-classes to drop such objects`,
      ]);
    }
    // the list taken from a checkpoint (what train/eval pass for the test split) decides the same way
    const fromCkpt = errorOf(() => openDataset(root, { split: 'test', categories: { ids: [1, 2, 3], names: classes } }));
    expect(fromCkpt.problems[0]).toContain("'rbc' is not in the class list [Platelets, RBC, WBC] (from the detector)");
  });

  it('without --classes, a name differing only in case from another is refused (it would become a class)', () => {
    const root = withTypo();
    const e = errorOf(() => openDataset(root, { split: 'train' }));
    expect(e.problems).toEqual([`${root} (train): class names 'RBC' and 'rbc' differ only in letter case (a typo?); pass the intended list with --classes`]);
  });

  it('--drop-unknown-classes drops them and counts them; the head keeps the listed classes', () => {
    const root = withTypo();
    const ds = openDataset(root, { split: 'train', classes, dropUnknownClasses: true });
    expect(ds.categories.names).toEqual(classes);
    expect(Array.from(ds.records[0]!.labels)).toEqual([1, 2]);
    expect(ds.summary).toMatchObject({ boxesRead: 3, boxesKept: 2, droppedUnknownClass: 1, perClass: { Platelets: 0, RBC: 1, WBC: 1 }, classesFrom: '--classes' });
    expect(() => openDataset(root, { split: 'train', classes, categories: { ids: [1, 2], names: ['RBC', 'WBC'] } })).toThrow(
      "--classes [Platelets, RBC, WBC] differs from the checkpoint's classes [RBC, WBC]",
    );
  });
});

describe('COCO: every image and annotation checked when opened', () => {
  function cocoFile(json: unknown): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'detect-coco-'));
    fs.mkdirSync(path.join(dir, 'annotations'));
    const file = path.join(dir, 'annotations', 'instances_train.json');
    fs.writeFileSync(file, typeof json === 'string' ? json : JSON.stringify(json));
    return file;
  }
  const images = [
    { id: 1, file_name: 'a.jpg', width: 100, height: 80 },
    { id: 2, file_name: 'b.jpg', width: 50, height: 50 },
  ];
  const categories = [
    { id: 1, name: 'person' },
    { id: 3, name: 'car' },
  ];

  it('string / non-finite / wrong-length bboxes, images without width/height, unknown image_id and category_id: all listed', () => {
    // 1e999 is how JSON spells a value that parses to Infinity
    const text = JSON.stringify({
      images: [...images, { id: 3, file_name: 'c.jpg' }],
      categories,
      annotations: [
        { id: 10, image_id: 1, category_id: 1, bbox: [1, 2, 3, 4], area: 12, iscrowd: 0 },
        { id: 11, image_id: 1, category_id: 1, bbox: ['1', '2', '3', '4'], area: 12, iscrowd: 0 },
        { id: 12, image_id: 1, category_id: 3, bbox: [1, 2, 'INF', 4], area: 12, iscrowd: 0 },
        { id: 13, image_id: 2, category_id: 3, bbox: [1, 2, 3], area: 12, iscrowd: 0 },
        { id: 14, image_id: 42, category_id: 1, bbox: [1, 2, 3, 4], area: 12, iscrowd: 0 },
        { id: 15, image_id: 2, category_id: 2, bbox: [1, 2, 3, 4], area: 12, iscrowd: 0 },
      ],
    }).replace('"INF"', '1e999');
    const file = cocoFile(text);
    const e = errorOf(() => openDataset(file, { split: 'train' }));
    expect(e.message.split('\n')[0]).toBe(`COCO annotation file ${file}: 7 problem(s) in the annotations, found when the split was opened:`);
    expect(e.problems).toEqual([
      `${file}: images[2] (id 3): 'width' must be a positive number, got nothing`,
      `${file}: images[2] (id 3): 'height' must be a positive number, got nothing`,
      `${file}: annotations[1] (id 11): 'bbox' must be [x, y, width, height] as 4 finite numbers, got ["1","2","3","4"]`,
      `${file}: annotations[2] (id 12): 'bbox' must be [x, y, width, height] as 4 finite numbers, got [1,2,Infinity,4]`,
      `${file}: annotations[3] (id 13): 'bbox' must be [x, y, width, height] as 4 finite numbers, got [1,2,3]`,
      `${file}: annotations[4] (id 14): 'image_id' 42 is not an image of the file`,
      `${file}: annotations[5] (id 15): 'category_id' 2 is not a category of the file`,
    ]);
  });

  it('partly outside boxes are clipped, zero-area and outside ones dropped, and counted', () => {
    const file = cocoFile({
      images,
      categories,
      annotations: [
        { id: 10, image_id: 1, category_id: 1, bbox: [90, 70, 20, 20], area: 300, iscrowd: 0 }, // clipped to [90, 70, 100, 80]
        { id: 11, image_id: 1, category_id: 3, bbox: [10, 10, 0, 5], area: 0, iscrowd: 0 }, // zero width
        { id: 12, image_id: 2, category_id: 3, bbox: [60, 0, 5, 5], area: 25, iscrowd: 0 }, // right of the 50x50 image
        { id: 13, image_id: 2, category_id: 3, bbox: [5, 5, 10, 10], area: 100, iscrowd: 1 },
      ],
    });
    const ds = openDataset(file, { split: 'train', images: path.dirname(file) });
    expect(boxes(ds, 0)).toEqual([90, 70, 100, 80]);
    expect(boxes(ds, 1)).toEqual([5, 5, 15, 15]);
    expect(Array.from(ds.records[1]!.iscrowd)).toEqual([1]);
    expect(ds.summary).toEqual({
      images: 2,
      boxesRead: 4,
      boxesKept: 2,
      clipped: 1,
      droppedZeroArea: 1,
      droppedOutside: 1,
      droppedUnknownClass: 0,
      perClass: { person: 1, car: 1 },
      classesFrom: "the file's categories",
    });
  });

  it('--classes selects categories by name; other categories are an error unless dropped', () => {
    const file = cocoFile({
      images,
      categories,
      annotations: [
        { id: 10, image_id: 1, category_id: 1, bbox: [1, 1, 5, 5], area: 25, iscrowd: 0 },
        { id: 11, image_id: 2, category_id: 3, bbox: [1, 1, 5, 5], area: 25, iscrowd: 0 },
      ],
    });
    const e = errorOf(() => openDataset(file, { split: 'train', classes: ['car'] }));
    expect(e.problems).toEqual([
      `${file}: annotations[0] (id 10): 'category_id' 1 is not in the class list [car] (from --classes); pass --drop-unknown-classes to drop such annotations`,
    ]);
    const ds = openDataset(file, { split: 'train', classes: ['car'], dropUnknownClasses: true });
    expect(ds.categories).toEqual({ ids: [3], names: ['car'] });
    expect(ds.summary).toMatchObject({ boxesKept: 1, droppedUnknownClass: 1 });
    expect(errorOf(() => openDataset(file, { split: 'train', classes: ['bus'] })).problems[0]).toBe(`${file}: --classes names 'bus', which is not a category of the file`);
  });
});
