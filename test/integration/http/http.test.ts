import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { connect, deleteNamespace, uniqueNamespace } from '../../helpers/redis.js';
import { WorkerProcess } from '../../helpers/worker/parent.js';
import type { NoRequests } from '../../helpers/worker/protocol.js';
import { FRONT_ENDS, useOrderApis } from './fixture.js';
import { post } from './post.js';
import type { ListeningEvent, OrderServerConfig } from './workers/order-server.js';

const redis = connect();
after(() => redis.quit());

for (const frontEnd of FRONT_ENDS) {
  describe(`Idempotency-Key through ${frontEnd}`, () => {
    const { start, runs } = useOrderApis(frontEnd, redis);

    it('runs concurrent duplicates once and replays status, body and stored headers', async () => {
      const url = await start({ replayHeaders: ['x-request-cost'] });

      const responses = await Promise.all(
        Array.from({ length: 5 }, () => post(`${url}/orders`, 'k-1')),
      );

      assert.equal(await runs(), 1);
      const bodies = await Promise.all(responses.map((r) => r.text()));
      assert.deepEqual(new Set(bodies).size, 1);
      assert.deepEqual(
        responses.map((r) => r.status),
        Array(5).fill(201),
      );
      const replays = responses.filter((r) => r.headers.get('idempotent-replayed') === 'true');
      assert.equal(replays.length, 4);
      for (const replay of replays) {
        assert.equal(replay.headers.get('location'), '/orders/ord_1');
        assert.equal(replay.headers.get('x-request-cost'), '3');
        assert.match(replay.headers.get('content-type') ?? '', /application\/json/);
        assert.equal(
          replay.headers.get('set-cookie'),
          null,
          'headers off the allow-list are not replayed',
        );
      }
    });

    it('answers a reuse with another payload with 422 problem+json', async () => {
      const url = await start();
      await post(`${url}/orders`, 'k-2', { item: 'book', qty: 1 });

      const reused = await post(`${url}/orders`, 'k-2', { item: 'book', qty: 5 });
      const reordered = await post(`${url}/orders`, 'k-2', { qty: 1, item: 'book' });

      assert.equal(reused.status, 422);
      assert.equal(reused.headers.get('content-type'), 'application/problem+json');
      assert.match((await reused.json()).type, /key-reused$/);
      assert.equal(
        reordered.status,
        201,
        'the same JSON with keys in another order is the same request',
      );
      assert.equal(await runs(), 1);
    });

    it('answers 400 for a missing key on a required route, an over-long key and a key not in visible ASCII', async () => {
      const url = await start({ required: true });

      const missing = await post(`${url}/orders`, undefined);
      const tooLong = await post(`${url}/orders`, 'k'.repeat(256));
      const latin1 = await post(`${url}/orders`, 'k\u00e9');
      const longest = await post(`${url}/orders`, 'k'.repeat(255));

      assert.equal(missing.status, 400);
      assert.equal(tooLong.status, 400);
      assert.equal(latin1.status, 400);
      assert.equal(longest.status, 201);
      assert.equal(await runs(), 1);
    });

    it('does not store a 5xx: the next attempt runs the handler again', async () => {
      const url = await start();

      const failed = await post(`${url}/orders?fail=1`, 'k-3');
      const retried = await post(`${url}/orders?fail=1`, 'k-3');

      assert.equal(failed.status, 503);
      assert.equal(retried.status, 201);
      assert.equal(await runs(), 2);
    });

    it('replays binary bodies byte for byte', async () => {
      const url = await start();
      const upload = () =>
        fetch(`${url}/files`, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream', 'idempotency-key': 'k-4' },
          body: new Uint8Array([9, 8, 7]),
        });

      const first = Buffer.from(await (await upload()).arrayBuffer());
      const replay = await upload();

      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
      assert.deepEqual(Buffer.from(await replay.arrayBuffer()), first);
      assert.deepEqual([...first], [0, 255, 1, 254, 1]);
    });

    it('keeps tenants apart: the same key in two scopes runs twice', async () => {
      const url = await start({ scope: (request) => request.header('x-tenant') });

      const a = await post(`${url}/orders`, 'k-5', undefined, { 'x-tenant': 'acme' });
      const b = await post(`${url}/orders`, 'k-5', undefined, { 'x-tenant': 'globex' });

      assert.equal(a.headers.get('idempotent-replayed'), null);
      assert.equal(b.headers.get('idempotent-replayed'), null);
      assert.equal(await runs(), 2);
    });

    it('answers 409 with Retry-After while the first request runs, when waiting is off', async () => {
      const url = await start({ wait: false, retryAfterSeconds: 2 }, 400);

      const first = post(`${url}/orders`, 'k-6');
      await new Promise((resolve) => setTimeout(resolve, 150));
      const concurrent = await post(`${url}/orders`, 'k-6');

      assert.equal(concurrent.status, 409);
      assert.equal(concurrent.headers.get('retry-after'), '2');
      assert.equal((await first).status, 201);
    });

    it('passes requests without a key, and unguarded methods, straight through', async () => {
      const url = await start();

      await post(`${url}/orders`, undefined);
      await post(`${url}/orders`, undefined);

      assert.equal(await runs(), 2);
    });
  });
}

describe('Idempotency-Key across two server processes', () => {
  it('runs concurrent duplicates spread over two processes once', async () => {
    const namespace = uniqueNamespace('http-procs');
    const counterKey = `${namespace}:handler-runs`;
    const config: OrderServerConfig = { frontEnd: 'express', namespace, counterKey };
    const servers = [0, 1].map(
      () =>
        new WorkerProcess<NoRequests, ListeningEvent>(
          new URL('./workers/order-server.ts', import.meta.url),
          config,
        ),
    );
    try {
      const urls = await Promise.all(
        servers.map(async (server) => (await server.until('listening')).url),
      );

      const responses = await Promise.all(
        Array.from({ length: 10 }, (_, i) => post(`${urls[i % 2]}/orders`, 'k-procs')),
      );

      const bodies = new Set(await Promise.all(responses.map((r) => r.text())));
      assert.equal(Number(await redis.get(counterKey)), 1);
      assert.equal(bodies.size, 1);
      assert.deepEqual(
        responses.map((r) => r.status),
        Array(10).fill(201),
      );
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
      await deleteNamespace(redis, namespace);
    }
  });
});
