// A user's plain Node ESM script in a project that installed the packed @refconv packages:
// build a model, refocus it, train one step, fuse it, save it in the tfjs format and reload it.
// Prints one JSON line of facts; exits 1 (with the reason) when one of them is wrong.
import * as tf from '@tensorflow/tfjs';
import { initBackend, refocus, fuse, countParams, RefConv2D } from '@refconv/core';
import { createModel } from '@refconv/backbones';

const info = await initBackend();
const fail = (msg) => {
  console.error(`user.mjs: ${msg}`);
  process.exit(1);
};

const pretrained = createModel('resnet18', { numClasses: 4, inputSize: 32, width: 0.25 });
const model = refocus(pretrained, { mapK: 3, init: 'default', frozen: 'official' });
const refconvs = model.layers.filter((l) => l instanceof RefConv2D);
if (refconvs.length === 0) fail('refocus made no RefConv2D layer');

const weightValues = (m, re) => m.weights.filter((w) => re.test(w.originalName ?? w.name)).map((w) => w.read().dataSync().slice());
const basisBefore = weightValues(model, /basis/);
const transformBefore = weightValues(model, /transform/);

const x = tf.randomNormal([4, 32, 32, 3], 0, 1, 'float32', 1);
const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3], 'int32'), 4);
model.compile({ optimizer: tf.train.sgd(0.05), loss: (t, p) => tf.losses.softmaxCrossEntropy(t, p) });
const loss = await model.trainOnBatch(x, y);
if (!Number.isFinite(loss)) fail(`loss ${loss}`);
const changed = (a, b) => a.some((v, i) => v.some((e, j) => e !== b[i][j]));
if (changed(basisBefore, weightValues(model, /basis/))) fail('training changed a frozen basis');
if (!changed(transformBefore, weightValues(model, /transform/))) fail('training left every transform unchanged');

const deployed = fuse(model, { foldBatchNorm: true });
if (deployed.layers.some((l) => l instanceof RefConv2D)) fail('fuse left a RefConv2D layer');
// max |a - b| / max |a| over the outputs of a batch
const gap = (a, b) =>
  tf.tidy(() => {
    const ya = a.predict(x);
    return tf.div(tf.max(tf.abs(tf.sub(ya, b.predict(x)))), tf.max(tf.abs(ya))).dataSync()[0];
  });
const fusedGap = gap(model, deployed);
if (!(fusedGap < 1e-4)) fail(`fused outputs differ from the refocused model's by ${fusedGap} (relative)`);
const params = countParams(deployed);
const plainParams = countParams(fuse(pretrained, { foldBatchNorm: true }));
if (params !== plainParams) fail(`deployed model has ${params} parameters, the pretrained one ${plainParams}`);

// Both forms round-trip through the tfjs format (RefConv2D is registered for serialization).
await model.save('file://./refocused-model');
await deployed.save('file://./deployed-model');
const refocusedBack = await tf.loadLayersModel('file://./refocused-model/model.json');
const deployedBack = await tf.loadLayersModel('file://./deployed-model/model.json');
const reloadGap = Math.max(gap(model, refocusedBack), gap(deployed, deployedBack));
if (reloadGap !== 0) fail(`reloaded models differ by ${reloadGap}`);

console.log(JSON.stringify({ backend: info.backend, refconvLayers: refconvs.length, loss, fusedGap, params, reloadGap }));
