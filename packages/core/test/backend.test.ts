import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { describeBackend, initBackend, tf } from '../src/backend.js';

describe('initBackend', () => {
  it('runs on the native TensorFlow backend when it is installed, and says so', async () => {
    const info = await initBackend();
    expect(['tensorflow', 'cpu']).toContain(info.backend);
    expect(tf.getBackend()).toBe(info.backend);
    expect(describeBackend(info)).toContain(`backend: ${info.backend}`);
  });

  it('says whether TensorFlow\'s buffers get transparent huge pages (the kernel\'s mode, GLIBC_TUNABLES)', async () => {
    const info = await initBackend();
    const thp = '/sys/kernel/mm/transparent_hugepage/enabled';
    if (info.backend !== 'tensorflow' || !fs.existsSync(thp)) return expect(describeBackend(info)).not.toContain('huge pages');
    const mode = /\[(\w+)\]/.exec(fs.readFileSync(thp, 'utf8'))![1];
    const saved = process.env.GLIBC_TUNABLES;
    try {
      process.env.GLIBC_TUNABLES = 'glibc.malloc.hugetlb=1';
      const on = describeBackend(info);
      delete process.env.GLIBC_TUNABLES;
      const off = describeBackend(info);
      if (mode === 'madvise') {
        expect(on).toContain('huge pages: on (glibc.malloc.hugetlb)');
        expect(off).toContain('huge pages: off (set GLIBC_TUNABLES=glibc.malloc.hugetlb=1');
      } else expect([on, off].every((d) => d.includes(`huge pages: ${mode} (kernel)`))).toBe(true);
    } finally {
      if (saved === undefined) delete process.env.GLIBC_TUNABLES;
      else process.env.GLIBC_TUNABLES = saved;
    }
  });

  it('rejects an unknown backend name with a clear error', async () => {
    await expect(initBackend('metal' as never)).rejects.toThrow(/unknown backend 'metal'/);
  });
});
