/**
 * Runs before every test file: selects the backend once. With REFCONV_REQUIRE_NATIVE=1
 * (set by .ci/run) a missing native backend fails the tests instead of silently
 * running them on the pure-JS backend.
 */
import { initBackend } from '@refconv/core';

const info = await initBackend();
if (process.env.REFCONV_REQUIRE_NATIVE === '1' && info.backend !== 'tensorflow') {
  throw new Error(`REFCONV_REQUIRE_NATIVE=1 but tests run on '${info.backend}': ${info.notes.join('; ')}`);
}
