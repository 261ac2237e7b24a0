// The built package as users get it: both module systems load it, and its declarations
// type-check in a strict user project without skipLibCheck (no redlock types leak out).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
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
  'idempotent-executor/nestjs',
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

  it('loads and type-checks in a project without ioredis (an optional peer: MemoryStore or PostgreSQL users)', () => {
    // Prepare: a project outside the repository (whose node_modules holds ioredis) with a copy
    // of the package and only its runtime dependencies.
    const project = mkdtempSync('/var/tmp/no-ioredis-');
    try {
      const modules = `${project}/node_modules`;
      const own = `${modules}/idempotent-executor`;
      mkdirSync(own, { recursive: true });
      cpSync(`${root}dist`, `${own}/dist`, { recursive: true });
      cpSync(`${root}package.json`, `${own}/package.json`);
      // The package's own dependencies (theirs resolve from their real paths), and Node's types.
      const { dependencies } = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as {
        dependencies: Record<string, string>;
      };
      for (const dependency of [...Object.keys(dependencies), '@types/node']) {
        mkdirSync(`${modules}/${dependency}`, { recursive: true });
        rmSync(`${modules}/${dependency}`, { recursive: true });
        symlinkSync(`${root}node_modules/${dependency}`, `${modules}/${dependency}`);
      }
      writeFileSync(`${project}/package.json`, JSON.stringify({ type: 'module' }));
      writeFileSync(
        `${project}/main.ts`,
        [
          "import { IdempotentExecutor, MemoryStore } from 'idempotent-executor';",
          'const executor = new IdempotentExecutor({ store: new MemoryStore() });',
          "export const value: Promise<number> = executor.run('k', async () => 1);",
        ].join('\n'),
      );
      writeFileSync(
        `${project}/tsconfig.json`,
        JSON.stringify({
          compilerOptions: {
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            target: 'ES2022',
            strict: true,
            skipLibCheck: false,
            noEmit: true,
            types: ['node'],
          },
          files: ['main.ts'],
        }),
      );
      const script = (load: string) =>
        `${load}.then(async (m) => { const e = new m.IdempotentExecutor({ store: new m.MemoryStore() }); process.stdout.write(String(await e.run('k', async () => 42))); })`;

      // Act
      const imported = execFileSync(
        process.execPath,
        ['--input-type=module', '-e', script("import('idempotent-executor')")],
        { cwd: project, encoding: 'utf8' },
      );
      const required = execFileSync(
        process.execPath,
        ['-e', script("Promise.resolve(require('idempotent-executor'))")],
        { cwd: project, encoding: 'utf8' },
      );
      const typeErrors = (() => {
        try {
          return execFileSync(
            process.execPath,
            [requireFromRoot.resolve('typescript/bin/tsc'), '-p', project],
            { encoding: 'utf8' },
          );
        } catch (error) {
          return String((error as { stdout?: string }).stdout ?? error);
        }
      })();

      // Assess
      assert.equal(imported, '42');
      assert.equal(required, '42');
      assert.equal(typeErrors.trim(), '');
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  });
});
