/**
 * Runs before every test file: selects the backend once. Tests are meant to run on the native
 * TensorFlow backend; when it is missing they fail with instructions instead of silently
 * running ~1000x slower on pure JS. Set REFCONV_BACKEND=cpu to run them on pure JS on purpose.
 */
import { afterEach } from 'vitest';
import { initBackend } from '@refconv/core';

const info = await initBackend();
if (info.backend !== 'tensorflow' && !process.env.REFCONV_BACKEND) {
  throw new Error(
    `tests expect the native TensorFlow backend but got '${info.backend}' (${info.notes.join('; ')}). ` +
      'Run `npm rebuild @refconv/core` to provision it, or set REFCONV_BACKEND=cpu to test on pure JS.',
  );
}

// Long synchronous tfjs work blocks the worker's event loop; yielding between tests lets vitest's
// RPC heartbeats through so a busy machine does not turn into "Timeout calling onTaskUpdate".
afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
