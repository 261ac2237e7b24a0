import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import express from 'express';
import {
  eventIds,
  WebhookGuard,
  type WebhookGuardOptions,
  webhookExpressHandler,
  webhookFetchHandler,
} from '../../../src/adapters/webhooks/index.js';
import { IdempotentExecutor } from '../../../src/index.js';
import { connect, deleteNamespace, uniqueNamespace } from '../../helpers/redis.js';

const redis = connect();
after(() => redis.quit());
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const SECRET = 'whsec_test';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A node:http server in front of a Fetch API handler, as Hono or Bun would run it. */
function fetchServer(handler: (request: Request) => Promise<Response>): Server {
  return createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const request = new Request(`http://localhost${req.url}`, {
      method: req.method ?? 'POST',
      headers: req.headers as Record<string, string>,
      body: Buffer.concat(chunks),
    });
    const response = await handler(request);
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name] = value;
    });
    res.writeHead(response.status, headers);
    res.end(Buffer.from(await response.arrayBuffer()));
  });
}

for (const frontEnd of ['fetch', 'express'] as const) {
  describe(`webhooks through the ${frontEnd} front end`, () => {
    let namespace: string;
    let executors: IdempotentExecutor[];
    let servers: Server[];
    let handled: string[];
    let failNext: boolean;

    /** A server (with its own executor and connections) that verifies signatures on the raw body. */
    const startServer = async (options: Partial<WebhookGuardOptions> = {}, workMs = 100) => {
      const executor = new IdempotentExecutor({ redis, namespace });
      executors.push(executor);
      const guard = new WebhookGuard(executor, { source: 'github', ...options });
      const handle = async (
        event: { id: string; body: Uint8Array },
        delivery: { header(n: string): string | undefined },
      ) => {
        const expected = createHmac('sha256', SECRET).update(event.body).digest('hex');
        if (delivery.header('x-hub-signature-256') !== `sha256=${expected}`)
          throw new Error('bad signature');
        await sleep(workMs);
        if (failNext) {
          failNext = false;
          throw new Error('database down');
        }
        handled.push(event.id);
        return { handledBy: process.pid, length: event.body.byteLength };
      };
      let server: Server;
      if (frontEnd === 'fetch') {
        server = fetchServer(webhookFetchHandler(guard, { eventId: eventIds.github, handle }));
      } else {
        const app = express();
        app.post(
          '/hooks',
          express.raw({ type: '*/*' }),
          webhookExpressHandler(guard, { eventId: eventIds.github, handle }),
        );
        server = createServer(app);
      }
      servers.push(server);
      return `${await listen(server)}/hooks`;
    };

    const deliver = (url: string, id: string | undefined, payload = '{"action":"opened"}') => {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(payload).digest('hex')}`,
      };
      if (id !== undefined) headers['x-github-delivery'] = id;
      return fetch(url, { method: 'POST', headers, body: payload });
    };

    beforeEach(() => {
      namespace = uniqueNamespace('webhooks');
      executors = [];
      servers = [];
      handled = [];
      failNext = false;
    });
    afterEach(async () => {
      for (const server of servers) server.closeAllConnections();
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
      await Promise.all(executors.map((executor) => executor.close()));
      await deleteNamespace(redis, namespace);
    });

    it('acknowledges a redelivery with the stored outcome without running the handler again', async () => {
      const url = await startServer();

      const first = await deliver(url, 'd-1');
      const again = await deliver(url, 'd-1');

      assert.equal(first.status, 200);
      assert.equal(again.status, 200);
      const [a, b] = [await first.json(), await again.json()];
      assert.equal(a.status, 'processed');
      assert.equal(b.status, 'duplicate');
      assert.deepEqual(b.result, a.result);
      assert.deepEqual(handled, ['d-1']);
    });

    it('handles concurrent deliveries to two servers once and acknowledges them all', async () => {
      const urls = [await startServer(), await startServer()];

      const responses = await Promise.all(
        Array.from({ length: 8 }, (_, i) => deliver(urls[i % 2]!, 'd-2')),
      );

      assert.deepEqual(
        responses.map((r) => r.status),
        Array(8).fill(200),
      );
      assert.deepEqual(handled, ['d-2']);
    });

    it('does not remember a failed handler: the redelivery runs it again', async () => {
      const url = await startServer();
      failNext = true;

      const failed = await deliver(url, 'd-3');
      const redelivered = await deliver(url, 'd-3');

      assert.equal(failed.status, 500);
      assert.equal(failed.headers.get('content-type'), 'application/problem+json');
      assert.equal(redelivered.status, 200);
      assert.equal((await redelivered.json()).status, 'processed');
      assert.deepEqual(handled, ['d-3']);
    });

    it('answers a redelivery at once with 409 and Retry-After while the first runs, when told to', async () => {
      const url = await startServer({ whileRunning: 'reject', retryAfterSeconds: 7 }, 400);

      const first = deliver(url, 'd-4');
      await sleep(100);
      const concurrent = await deliver(url, 'd-4');

      assert.equal(concurrent.status, 409);
      assert.equal(concurrent.headers.get('retry-after'), '7');
      assert.equal((await first).status, 200);
    });

    it('runs an event again when it is redelivered after the retention window', async () => {
      const url = await startServer({ ttlMs: 300 }, 10);

      await deliver(url, 'd-5');
      await sleep(600);
      const late = await deliver(url, 'd-5');

      assert.equal((await late.json()).status, 'processed');
      assert.deepEqual(handled, ['d-5', 'd-5']);
    });

    it('rejects a delivery without an event id with 400 problem+json', async () => {
      const url = await startServer();

      const response = await deliver(url, undefined);

      assert.equal(response.status, 400);
      assert.match((await response.json()).type, /missing-event-id$/);
      assert.deepEqual(handled, []);
    });
  });
}

describe('event id extractors', () => {
  const delivery = (headers: Record<string, string>, body = '') => ({
    header: (name: string) => headers[name],
    body: Buffer.from(body),
  });

  it('read the id each common sender uses', () => {
    assert.equal(eventIds.standardWebhooks(delivery({ 'webhook-id': 'msg_1' })), 'msg_1');
    assert.equal(eventIds.github(delivery({ 'x-github-delivery': 'gh-1' })), 'gh-1');
    assert.equal(eventIds.shopify(delivery({ 'x-shopify-webhook-id': 'sh-1' })), 'sh-1');
    assert.equal(
      eventIds.stripe(delivery({}, '{"id":"evt_1","type":"charge.succeeded"}')),
      'evt_1',
    );
    assert.equal(eventIds.stripe(delivery({}, 'not json')), undefined);
    assert.equal(eventIds.header('x-event')(delivery({ 'x-event': 'e-1' })), 'e-1');
  });

  it('rejects bad options with typed errors', () => {
    const executor = new IdempotentExecutor({ redis, namespace: 'unused' });
    assert.throws(() => new WebhookGuard(executor, { source: '' }), {
      code: 'IDEMPOTENCY_INVALID_OPTION',
    });
    assert.throws(() => new WebhookGuard(executor, { source: 's', whileRunning: 'no' as 'wait' }), {
      code: 'IDEMPOTENCY_INVALID_OPTION',
    });
    return executor.close();
  });
});
