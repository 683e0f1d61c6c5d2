/**
 * Child process for the kill test: saves checkpoints in a loop where every weight of
 * checkpoint i equals i and its state says epoch i, so a reader can tell a torn file.
 */
import { saveCheckpoint } from '../../src/checkpoint.js';

const file = process.argv[2]!;
const n = 1 << 20; // 4 MB per tensor: big enough that a write takes a while
for (let i = 1; ; i++) {
  saveCheckpoint(file, {
    weights: { 'a/kernel': { shape: [n], data: new Float32Array(n).fill(i) }, 'b/kernel': { shape: [n], data: new Float32Array(n).fill(i) } },
    state: { epoch: i, step: i * 10 },
  });
  if (i === 1) process.stdout.write('first\n');
}
