/** Vitest settings shared by every package: source resolution and the backend setup. */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export function packageTestConfig(extra: { testTimeout?: number; singleFork?: boolean } = {}) {
  return defineConfig({
    resolve: { conditions: ['@refconv/source'] },
    ssr: { resolve: { conditions: ['@refconv/source'] } },
    test: {
      include: ['test/**/*.test.ts'],
      setupFiles: [fileURLToPath(new URL('./tools/vitest-setup.ts', import.meta.url))],
      testTimeout: extra.testTimeout ?? 120_000,
      hookTimeout: 300_000,
      pool: 'forks',
      poolOptions: { forks: { singleFork: extra.singleFork ?? false, maxForks: 2, minForks: 1 } },
      server: { deps: { external: [/@tensorflow/] } },
    },
  });
}
