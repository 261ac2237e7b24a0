// Two copies of the package in one application: its CJS build through `require` and its ESM
// build through `import`, each with its own classes. Every check that crosses from one copy to
// the other is by brand (`Symbol.for`), never `instanceof`. Runs on the built dist/ (npm install
// builds it; otherwise `npm run build`), like the consumer in test/unit/dist.test.ts.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type * as Http from '../../src/adapters/http/index.js';
import type * as Package from '../../src/index.js';
import { freePort } from '../helpers/redis.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const requireFromRoot = createRequire(`${root}package.json`);

type PackageModule = typeof Package;
type HttpModule = typeof Http;

describe('two copies of the package loaded at once (CJS and ESM builds)', () => {
  let required: PackageModule;
  let imported: PackageModule;
  before(async () => {
    required = requireFromRoot('idempotent-executor') as PackageModule;
    imported = (await import('idempotent-executor')) as unknown as PackageModule;
  });

  it('are two copies, with classes of their own', () => {
    assert.notEqual(required.IdempotencyError, imported.IdempotencyError);
    assert.ok(!(new required.InvalidKeyError('x') instanceof imported.IdempotencyError));
  });

  it("tell the other copy's errors by isIdempotencyError, both ways", () => {
    // Prepare
    const fromCjs = new required.StoreUnavailableError('Redis is down');
    const fromEsm = new imported.KeyReusedError('order-1');

    // Act
    const seenByEsm = imported.isIdempotencyError(fromCjs);
    const seenByCjs = required.isIdempotencyError(fromEsm);

    // Assess
    assert.equal(seenByEsm, true);
    assert.equal(seenByCjs, true);
    assert.equal(fromCjs.code, imported.ErrorCode.STORE_UNAVAILABLE);
  });

  it('tell nothing else for an IdempotencyError', () => {
    const lookalikes: unknown[] = [
      new Error('plain'),
      Object.assign(new Error('coded'), { code: 'IDEMPOTENCY_STORE_UNAVAILABLE' }),
      new required.ReplayedError('replayed'),
      new required.StoreDataError('not ours'),
      { code: 'IDEMPOTENCY_KEY_REUSED', name: 'KeyReusedError', message: 'x' },
      null,
      'IDEMPOTENCY_KEY_REUSED',
    ];
    for (const value of lookalikes) assert.equal(imported.isIdempotencyError(value), false);
  });

  it("tell the other copy's StoreDataError by isStoreDataError, both ways", () => {
    assert.equal(imported.isStoreDataError(new required.StoreDataError('a hash')), true);
    assert.equal(required.isStoreDataError(new imported.StoreDataError('a hash')), true);
    assert.equal(imported.isStoreDataError(new Error('a hash')), false);
    assert.equal(imported.isStoreDataError(new required.StoreUnavailableError('down')), false);
  });

  it('map a StoreDataError from a store of the other copy to CORRUPT_RECORD, not to an outage', async () => {
    // Prepare: a store built with the CJS copy whose key holds data it cannot read, under an
    // executor of the ESM copy.
    const inner = new required.MemoryStore();
    const store: Package.Store = {
      claim: async () => null,
      read: async () => {
        throw new required.StoreDataError('The key holds a Redis hash');
      },
      subscribe: (key, listener) => inner.subscribe(key, listener),
      forget: (key) => inner.forget(key),
      close: () => inner.close(),
    };
    const executor = new imported.IdempotentExecutor({ store, namespace: 'dual' });

    // Act
    const error = await executor.run('order-1', async () => 'ran').catch((caught) => caught);
    await executor.close();

    // Assess
    assert.equal(imported.isIdempotencyError(error), true);
    assert.equal((error as Package.IdempotencyError).code, imported.ErrorCode.CORRUPT_RECORD);
  });

  describe('an executor built with require() behind the ESM fetch handler, Redis unreachable', () => {
    let client: import('ioredis').Redis;
    let executor: Package.IdempotentExecutor;
    let http: HttpModule;
    before(async () => {
      const { Redis } = requireFromRoot('ioredis') as typeof import('ioredis');
      // A port nothing listens on.
      client = new Redis(await freePort(), '127.0.0.1', { lazyConnect: true });
      client.on('error', () => {});
      executor = new required.IdempotentExecutor({
        redis: client,
        namespace: 'dual',
        storeTimeoutMs: 200,
      });
      http = (await import('idempotent-executor/http')) as unknown as HttpModule;
    });
    after(async () => {
      await executor?.close();
      client?.disconnect();
    });

    it('answers 503 problem+json, the handler not run', async () => {
      // Prepare
      let ran = 0;
      const handler = http.idempotentFetchHandler(executor, async () => {
        ran++;
        return new Response('charged', { status: 201 });
      });
      const request = new Request('http://shop.test/orders', {
        method: 'POST',
        headers: { 'Idempotency-Key': 'order-1', 'content-type': 'application/json' },
        body: '{"amount":100}',
      });

      // Act
      const response = await handler(request);

      // Assess
      assert.equal(response.status, 503);
      assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
      const problem = (await response.json()) as { status?: number };
      assert.equal(problem.status, 503);
      assert.equal(ran, 0);
    });
  });
});
