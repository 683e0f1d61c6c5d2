import { describe, expect, it } from 'vitest';
import { describeBackend, initBackend, tf } from '../src/backend.js';

describe('initBackend', () => {
  it('runs on the native TensorFlow backend when it is installed, and says so', async () => {
    const info = await initBackend();
    expect(['tensorflow', 'cpu']).toContain(info.backend);
    expect(tf.getBackend()).toBe(info.backend);
    expect(describeBackend(info)).toContain(`backend: ${info.backend}`);
  });

  it('rejects an unknown backend name with a clear error', async () => {
    await expect(initBackend('metal' as never)).rejects.toThrow(/unknown backend 'metal'/);
  });
});
