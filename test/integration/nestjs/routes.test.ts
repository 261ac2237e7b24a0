// Routes guarded by @Idempotent() in a real Nest application, on the Express and the Fastify
// platform, against the shared Redis: the answers of idempotent-executor/http, with the stored
// response being what the client received from Nest.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { UnauthorizedException } from '@nestjs/common';
import { Redis } from 'ioredis';
import { connect, freePort, waitUntil } from '../../helpers/redis.js';
import { post, problemType } from '../http/post.js';
import { PLATFORMS } from './app.js';
import { sleep, useNestApps } from './fixture.js';

const redis = connect();
after(() => redis.quit());

for (const platform of PLATFORMS) {
  describe(`@Idempotent() routes on the ${platform} platform`, () => {
    const apps = useNestApps(platform, redis);

    it('runs the handler once and replays its status, stored headers and body with Idempotent-Replayed', async () => {
      // Prepare
      const { url, handlers } = await apps.start();

      // Act
      const first = await post(`${url}/orders`, 'k-1');
      const firstBody = await first.text();
      const replay = await post(`${url}/orders`, 'k-1');

      // Assess
      assert.equal(first.status, 201);
      assert.equal(first.headers.get('location'), '/orders/1');
      assert.equal(first.headers.get('set-cookie'), 'session=1');
      assert.equal(first.headers.get('idempotent-replayed'), null);
      assert.equal(replay.status, 201);
      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
      assert.equal(replay.headers.get('location'), '/orders/1');
      assert.equal(replay.headers.get('x-order-region'), 'eu');
      assert.equal(replay.headers.get('content-type'), first.headers.get('content-type'));
      assert.equal(replay.headers.get('set-cookie'), null);
      assert.equal(await replay.text(), firstBody);
      assert.deepEqual(JSON.parse(firstBody), {
        id: 1,
        order: 'ord_1',
        body: { item: 'book', qty: 1 },
      });
      assert.equal(handlers.runs, 1);
    });

    it('stores the status of @HttpCode() and a text body as the platform serialised it', async () => {
      // Prepare
      const { url, handlers } = await apps.start();
      const replace = () => post(`${url}/orders/7`, 'k-put', { item: 'pen' }, {}, 'PUT');

      // Act
      const first = await replace();
      const firstType = first.headers.get('content-type');
      const firstText = await first.text();
      const replay = await replace();

      // Assess
      assert.equal(first.status, 202);
      assert.equal(firstText, 'accepted 7');
      assert.match(firstType ?? '', /^text\//);
      assert.equal(replay.status, 202);
      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
      assert.equal(replay.headers.get('content-type'), firstType);
      assert.equal(await replay.text(), 'accepted 7');
      assert.equal(handlers.runs, 1);
    });

    it('replays a streamed body (StreamableFile) byte for byte with its content type', async () => {
      // Prepare
      const { url, handlers } = await apps.start();

      // Act
      const first = await post(`${url}/files`, 'k-file');
      const firstBytes = Buffer.from(await first.arrayBuffer());
      const replay = await post(`${url}/files`, 'k-file');

      // Assess
      assert.deepEqual([...firstBytes], [0, 255, 1, 254, 1]);
      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
      assert.equal(replay.headers.get('content-type'), 'application/x-receipt');
      assert.deepEqual(Buffer.from(await replay.arrayBuffer()), firstBytes);
      assert.equal(handlers.runs, 1);
    });

    it('makes a concurrent duplicate wait for the running request and answers it with its response', async () => {
      // Prepare
      const { url, handlers } = await apps.start({ handlers: { runs: 0, workMs: 400 } });

      // Act
      const first = post(`${url}/orders`, 'k-2');
      await waitUntil(() => handlers.runs === 1, 5_000, 5);
      const duplicate = await post(`${url}/orders`, 'k-2');
      const original = await first;

      // Assess
      assert.equal(original.status, 201);
      assert.equal(duplicate.status, 201);
      assert.equal(duplicate.headers.get('idempotent-replayed'), 'true');
      assert.deepEqual(await duplicate.json(), await original.json());
      assert.equal(handlers.runs, 1);
    });

    it('makes a duplicate sent to another application sharing the Redis wait, and runs the handler once', async () => {
      // Prepare
      const handlers = { runs: 0, workMs: 400 };
      const a = await apps.start({ handlers });
      const b = await apps.start({ handlers });

      // Act
      const first = post(`${a.url}/orders`, 'k-3');
      await waitUntil(() => handlers.runs === 1, 5_000, 5);
      const duplicate = await post(`${b.url}/orders`, 'k-3');
      const original = await first;

      // Assess
      assert.equal(duplicate.status, 201);
      assert.equal(duplicate.headers.get('idempotent-replayed'), 'true');
      assert.equal(duplicate.headers.get('location'), '/orders/1');
      assert.deepEqual(await duplicate.json(), await original.json());
      assert.equal(handlers.runs, 1);
    });

    it('answers 409 in-progress with Retry-After at once to a duplicate of a route with wait: false', async () => {
      // Prepare
      const { url, handlers } = await apps.start({ handlers: { runs: 0, workMs: 400 } });

      // Act
      const first = post(`${url}/strict`, 'k-4');
      await waitUntil(() => handlers.runs === 1, 5_000, 5);
      const duplicate = await post(`${url}/strict`, 'k-4');
      await first;

      // Assess
      assert.equal(duplicate.status, 409);
      assert.equal(duplicate.headers.get('content-type'), 'application/problem+json');
      assert.equal(duplicate.headers.get('retry-after'), '1');
      assert.equal((await duplicate.json()).type, problemType('in-progress'));
      assert.equal(handlers.runs, 1);
    });

    it('answers 422 key-reused to the same key with another body, path or method, and not to reordered JSON', async () => {
      // Prepare
      const { url, handlers } = await apps.start();
      await post(`${url}/orders/1/items`, 'k-5', { sku: 'a', qty: 1 });

      // Act
      const reordered = await post(`${url}/orders/1/items`, 'k-5', { qty: 1, sku: 'a' });
      const otherBody = await post(`${url}/orders/1/items`, 'k-5', { sku: 'b', qty: 1 });
      const otherPath = await post(`${url}/orders/2/items`, 'k-5', { sku: 'a', qty: 1 });
      const otherMethod = await post(`${url}/orders/1`, 'k-5', { sku: 'a', qty: 1 }, {}, 'PUT');

      // Assess
      assert.equal(reordered.status, 201);
      assert.equal(reordered.headers.get('idempotent-replayed'), 'true');
      for (const refused of [otherBody, otherPath, otherMethod]) {
        assert.equal(refused.status, 422);
        assert.equal(refused.headers.get('content-type'), 'application/problem+json');
        assert.equal((await refused.json()).type, problemType('key-reused'));
      }
      assert.equal(handlers.runs, 1);
    });

    it('answers 400 to a key that is too long or not visible ASCII, and to a missing key where one is required', async () => {
      // Prepare
      const { url, handlers } = await apps.start();

      // Act
      const tooLong = await post(`${url}/orders`, 'k'.repeat(256));
      const notAscii = await post(`${url}/orders`, 'clé');
      const missing = await post(`${url}/strict`, undefined);

      // Assess
      for (const invalid of [tooLong, notAscii]) {
        assert.equal(invalid.status, 400);
        assert.equal((await invalid.json()).type, problemType('invalid-key'));
      }
      assert.equal(missing.status, 400);
      assert.equal(missing.headers.get('content-type'), 'application/problem+json');
      assert.equal((await missing.json()).type, problemType('missing-key'));
      assert.equal(handlers.runs, 0);
    });

    it('answers 503 store-unavailable with Retry-After when Redis is unreachable, without running the handler', async () => {
      // Prepare: an executor whose Redis is a closed port
      const unreachable = new Redis({
        host: '127.0.0.1',
        port: await freePort(),
        lazyConnect: true,
      });
      unreachable.on('error', () => {});
      const { url, handlers } = await apps.start({
        executorOptions: { redis: unreachable, namespace: apps.namespace, storeTimeoutMs: 300 },
      });

      // Act
      const answer = await post(`${url}/orders`, 'k-6');

      // Assess
      assert.equal(answer.status, 503);
      assert.equal(answer.headers.get('content-type'), 'application/problem+json');
      assert.equal(answer.headers.get('retry-after'), '1');
      assert.equal((await answer.json()).type, problemType('store-unavailable'));
      assert.equal(handlers.runs, 0);
      unreachable.disconnect();
    });

    it('stores nothing when the handler throws an HttpException: Nest answers it, and the next attempt runs again', async () => {
      // Prepare
      const { url, handlers } = await apps.start();

      // Act
      const first = await post(`${url}/conflicts`, 'k-7');
      const second = await post(`${url}/conflicts`, 'k-7');

      // Assess
      for (const answer of [first, second]) {
        assert.equal(answer.status, 409);
        assert.equal(answer.headers.get('idempotent-replayed'), null);
        assert.deepEqual(await answer.json(), {
          statusCode: 409,
          error: 'Conflict',
          message: 'Order already being changed',
        });
      }
      assert.equal(handlers.runs, 2);
    });

    it('stores nothing when the handler throws another error: Nest answers 500, and the next attempt runs again', async () => {
      // Prepare
      const { url, handlers } = await apps.start();

      // Act
      const first = await post(`${url}/failures`, 'k-8');
      const second = await post(`${url}/failures`, 'k-8');

      // Assess
      assert.equal(first.status, 500);
      assert.equal(second.status, 500);
      assert.equal(second.headers.get('idempotent-replayed'), null);
      assert.equal(handlers.runs, 2);
    });

    it('runs the handler once for a client that aborts mid-request and retries with the same key', async () => {
      // Prepare
      const { url, handlers } = await apps.start({ handlers: { runs: 0, workMs: 700 } });
      const order = (signal?: AbortSignal) =>
        fetch(`${url}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': 'k-9' },
          body: JSON.stringify({ item: 'book' }),
          ...(signal === undefined ? {} : { signal }),
        });

      // Act
      await assert.rejects(order(AbortSignal.timeout(150)), { name: 'TimeoutError' });
      await sleep(150);
      const retry = await order();
      const replay = await order();

      // Assess
      assert.equal(retry.status, 201);
      assert.equal((await retry.json()).order, 'ord_1');
      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
      assert.equal((await replay.json()).order, 'ord_1');
      assert.equal(handlers.runs, 1);
    });

    it('runs an Observable handler once when its client aborts (Nest then sends nothing) and retries', async () => {
      // Prepare
      const { url, handlers } = await apps.start({ handlers: { runs: 0, workMs: 600 } });
      const observe = (signal?: AbortSignal) =>
        fetch(`${url}/streams`, {
          method: 'POST',
          headers: { 'idempotency-key': 'k-10' },
          ...(signal === undefined ? {} : { signal }),
        });

      // Act
      await assert.rejects(observe(AbortSignal.timeout(150)), { name: 'TimeoutError' });
      await sleep(150);
      const retry = await observe();

      // Assess
      assert.equal(retry.status, 201);
      assert.match(retry.headers.get('content-type') ?? '', /^application\/json/);
      assert.deepEqual(await retry.json(), { id: 1 });
      assert.equal(handlers.runs, 1);
    });

    it('reads the tenant header in scope in any case: one key in two tenants runs twice, each replays its own', async () => {
      // Prepare: scope asks for 'X-Tenant'; Node hands the header over as 'x-tenant'
      const { url, handlers } = await apps.start({
        defaults: { scope: (request) => request.header('X-Tenant') },
      });

      // Act
      const acme = await post(`${url}/orders`, 'k-11', undefined, { 'X-TENANT': 'acme' });
      const globex = await post(`${url}/orders`, 'k-11', undefined, { 'x-tenant': 'globex' });
      const acmeAgain = await post(`${url}/orders`, 'k-11', undefined, { 'x-Tenant': 'acme' });

      // Assess
      assert.equal((await acme.json()).id, 1);
      assert.equal((await globex.json()).id, 2);
      assert.equal(acmeAgain.headers.get('idempotent-replayed'), 'true');
      assert.equal((await acmeAgain.json()).id, 1);
      assert.equal(handlers.runs, 2);
    });

    it('answers 500 invalid-scope when scope returns nothing, without running the handler', async () => {
      // Prepare
      const { url, handlers } = await apps.start({
        defaults: { scope: (request) => request.header('X-Tenant') },
      });

      // Act
      const answer = await post(`${url}/orders`, 'k-12');

      // Assess
      assert.equal(answer.status, 500);
      assert.equal(answer.headers.get('content-type'), 'application/problem+json');
      const problem = await answer.json();
      assert.equal(problem.type, problemType('invalid-scope'));
      assert.match(problem.detail, /`scope`/);
      assert.equal(handlers.runs, 0);
    });

    it('hands an exception thrown by scope to Nest (401), without running the handler', async () => {
      // Prepare
      const { url, handlers } = await apps.start({
        defaults: {
          scope: (request) => {
            const apiKey = request.header('X-Api-Key');
            if (apiKey === undefined) throw new UnauthorizedException();
            return apiKey;
          },
        },
      });

      // Act
      const answer = await post(`${url}/orders`, 'k-13');

      // Assess
      assert.equal(answer.status, 401);
      assert.equal((await answer.json()).statusCode, 401);
      assert.equal(handlers.runs, 0);
    });

    it('lets a request without a key through unguarded', async () => {
      // Prepare
      const { url, handlers } = await apps.start();

      // Act
      const first = await post(`${url}/orders`, undefined);
      const second = await post(`${url}/orders`, undefined);

      // Assess
      assert.equal((await first.json()).id, 1);
      assert.equal((await second.json()).id, 2);
      assert.equal(second.headers.get('idempotent-replayed'), null);
      assert.equal(handlers.runs, 2);
    });
  });
}
