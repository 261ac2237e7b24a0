// The built package as users get it: both module systems load it, and its declarations
// type-check in a strict user project without skipLibCheck (no redlock types leak out).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const requireFromRoot = createRequire(`${root}package.json`);
const SUBPATHS = [
  'idempotent-executor',
  'idempotent-executor/jobs',
  'idempotent-executor/payments',
  'idempotent-executor/webhooks',
  'idempotent-executor/http',
];

describe('dist', () => {
  it('is built (npm install runs the build; otherwise run npm run build)', () => {
    assert.ok(existsSync(`${root}dist/esm/index.js`) && existsSync(`${root}dist/cjs/index.js`));
  });

  for (const entry of SUBPATHS) {
    it(`loads ${entry} through require and import with the same API`, async () => {
      const required = requireFromRoot(entry) as Record<string, unknown>;
      const imported = (await import(entry)) as Record<string, unknown>;
      assert.ok(Object.keys(required).length > 0);
      assert.deepEqual(
        Object.keys(required).sort(),
        Object.keys(imported)
          .filter((name) => name !== 'default')
          .sort(),
      );
    });
  }

  it('type-checks in a strict NodeNext project (ESM and CJS files) without skipLibCheck', () => {
    const tsc = requireFromRoot.resolve('typescript/bin/tsc');
    const output = (() => {
      try {
        return execFileSync(process.execPath, [tsc, '-p', 'test/fixtures/consumer'], {
          cwd: root,
          encoding: 'utf8',
        });
      } catch (error) {
        return String((error as { stdout?: string }).stdout ?? error);
      }
    })();
    assert.equal(output.trim(), '');
  });
});
