/**
 * @refconv/coco-eval: a TypeScript port of pycocotools (COCO API, mask API, COCOeval for bbox and
 * segm) that produces the same numbers.
 */
export { COCO, readJson } from './coco.js';
export type {
  CocoAnnotation,
  CocoCategory,
  CocoDataset,
  CocoImage,
  DetectionResult,
  AnnIdFilter,
  LoadResOptions,
  AnnotationTable,
} from './coco.js';
export { COCOeval, meanValid, pyFixed } from './cocoeval.js';
export type { EvalImg, EvalResult, CategoryResult, SummarizeOptions } from './cocoeval.js';
export { Params, linspace } from './params.js';
export type { IouType } from './params.js';
export * as maskUtils from './mask.js';
export type { Rle, CompressedRle, UncompressedRle, Segmentation, Box } from './mask.js';
