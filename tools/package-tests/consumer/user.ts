// A user's TypeScript against the packed packages' declarations, checked with `tsc --noEmit`
// (strict, NodeNext; the test also checks our declarations with skipLibCheck off). The @ts-expect-error lines fail the check if the
// declarations stop resolving (everything would be `any`) or lose their types.
import * as tf from '@tensorflow/tfjs';
import { countParams, fuse, initBackend, refocus, type BackendInfo, type RefocusOptions } from '@refconv/core';
import { createModel, listModels, type CreateModelOptions } from '@refconv/backbones';
import { COCO, COCOeval } from '@refconv/coco-eval';
import * as engine from '@refconv/engine';
import * as classify from '@refconv/classify';
import * as detect from '@refconv/detect';
import * as segment from '@refconv/segment';

const info: BackendInfo = await initBackend();
const options: CreateModelOptions = { numClasses: 4, inputSize: 32, width: 0.25 };
const refocusOptions: RefocusOptions = { mapK: 3, frozen: 'official' };
const model: tf.LayersModel = refocus(createModel('resnet18', options), refocusOptions);
const deployed: tf.LayersModel = fuse(model, { foldBatchNorm: true });
const n: number = countParams(deployed);
const archs: string[] = listModels();

// @ts-expect-error mapK is a number
refocus(model, { mapK: 'three' });
// @ts-expect-error fuse takes a model
fuse('resnet18');

const gt = new COCO({ images: [], annotations: [], categories: [] });
const E = new COCOeval(gt, gt.loadRes([], { allowEmpty: true }), 'bbox');
const stats: number[] = E.summarize({ log: null });

console.log(info.backend, n, archs.length, stats.length, Object.keys(engine).length, Object.keys(classify).length, Object.keys(detect).length, Object.keys(segment).length);
