import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { sign } from '@octokit/webhooks-methods';
import {
  deliveryOf,
  eventIds,
  verifiers,
  WebhookGuard,
  type WebhookGuardOptions,
} from '../../../src/adapters/webhooks/index.js';
import { IdempotentExecutor } from '../../../src/index.js';
import { connect, deleteNamespace, uniqueNamespace } from '../../helpers/redis.js';
import { Endpoints, sleep } from './helpers.js';

const redis = connect();
after(() => redis.quit());
const SECRET = 'gh-webhook-secret';

for (const frontEnd of ['fetch', 'express'] as const) {
  describe(`webhooks through the ${frontEnd} front end`, () => {
    let namespace: string;
    const endpoints = new Endpoints(redis, () => namespace);
    let handled: string[];
    let failNext: boolean;

    /** A GitHub endpoint: the guard verifies X-Hub-Signature-256, the handler only does work. */
    const startServer = async (options: Partial<WebhookGuardOptions> = {}, workMs = 100) => {
      const { url } = await endpoints.start(
        frontEnd,
        { source: 'github', verify: verifiers.github(SECRET), ...options },
        {
          eventId: eventIds.github,
          handle: async (event) => {
            await sleep(workMs);
            if (failNext) {
              failNext = false;
              throw new Error('database down');
            }
            handled.push(event.id);
            return { handledBy: process.pid, length: event.body.byteLength };
          },
        },
      );
      return url;
    };

    /** A delivery as GitHub sends it, signed by GitHub's own library. */
    const deliver = async (
      url: string,
      id: string | undefined,
      payload = '{"action":"opened"}',
    ) => {
      const headers: Record<string, string> = {
        'Content-Type': 'application/json',
        'X-Hub-Signature-256': await sign(SECRET, payload),
      };
      if (id !== undefined) headers['X-GitHub-Delivery'] = id;
      return fetch(url, { method: 'POST', headers, body: payload });
    };

    beforeEach(() => {
      namespace = uniqueNamespace('webhooks');
      handled = [];
      failNext = false;
    });
    afterEach(async () => {
      await endpoints.stop();
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
      assert.equal('resultStored' in b, false);
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
      assert.match((await failed.json()).type, /\/problems\/webhooks\/handler-failed$/);
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
      assert.match((await concurrent.json()).type, /\/problems\/webhooks\/in-progress$/);
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

    it('rejects a signed delivery without an event id with 400 problem+json', async () => {
      const url = await startServer();

      const response = await deliver(url, undefined);

      assert.equal(response.status, 400);
      assert.match((await response.json()).type, /\/problems\/webhooks\/missing-event-id$/);
      assert.deepEqual(handled, []);
    });

    it('reads an event id header named in any case', async () => {
      const { url } = await endpoints.start(
        frontEnd,
        { source: 'custom', verify: false },
        { eventId: eventIds.header('X-Custom-Event-ID'), handle: (event) => event.id },
      );

      const response = await fetch(url, {
        method: 'POST',
        headers: { 'x-custom-event-id': 'c-1' },
        body: '{}',
      });

      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { status: 'processed', id: 'c-1', result: 'c-1' });
    });
  });
}

describe('event id extractors', () => {
  const delivery = (headers: Record<string, string>, body = '') =>
    deliveryOf(headers, Buffer.from(body));

  it('read the id each common sender uses, in both header spellings', () => {
    assert.equal(eventIds.standardWebhooks(delivery({ 'webhook-id': 'msg_1' })), 'msg_1');
    assert.equal(eventIds.standardWebhooks(delivery({ 'svix-id': 'msg_2' })), 'msg_2');
    assert.equal(eventIds.github(delivery({ 'x-github-delivery': 'gh-1' })), 'gh-1');
    assert.equal(eventIds.shopify(delivery({ 'x-shopify-webhook-id': 'sh-1' })), 'sh-1');
    assert.equal(eventIds.shopify(delivery({ 'shopify-webhook-id': 'sh-2' })), 'sh-2');
    assert.equal(eventIds.shopifyEvent(delivery({ 'x-shopify-event-id': 'ev-1' })), 'ev-1');
    assert.equal(eventIds.shopifyEvent(delivery({ 'shopify-event-id': 'ev-2' })), 'ev-2');
    assert.equal(
      eventIds.stripe(delivery({}, '{"id":"evt_1","type":"charge.succeeded"}')),
      'evt_1',
    );
    assert.equal(eventIds.stripe(delivery({}, 'not json')), undefined);
    assert.equal(eventIds.header('x-event')(delivery({ 'x-event': 'e-1' })), 'e-1');
  });

  it('find headers whatever the spelling of the map they are read from (a Lambda event, say)', () => {
    const lambdaStyle = delivery({
      'X-GitHub-Delivery': 'gh-2',
      'Svix-Id': 'msg_3',
      'Shopify-Webhook-Id': 'sh-3',
      'X-Custom': 'c-2',
    });

    assert.equal(eventIds.github(lambdaStyle), 'gh-2');
    assert.equal(eventIds.standardWebhooks(lambdaStyle), 'msg_3');
    assert.equal(eventIds.shopify(lambdaStyle), 'sh-3');
    assert.equal(eventIds.header('X-CUSTOM')(lambdaStyle), 'c-2');
    assert.equal(lambdaStyle.header('x-custom'), 'c-2');
  });

  it('find a header named in any case in a delivery over a lower-case map (as Fastify gives)', () => {
    const fastifyStyle = {
      header: (name: string) => ({ 'x-event': 'e-2' })[name],
      body: Buffer.from(''),
    };

    assert.equal(eventIds.header('X-Event')(fastifyStyle), 'e-2');
  });

  it('lets a verifier ask for a header in any case when guard.reply is called directly', async () => {
    const namespace = uniqueNamespace('webhooks-reply');
    const executor = new IdempotentExecutor({ redis, namespace });
    const guard = new WebhookGuard(executor, {
      source: 'custom',
      verify: (delivery) => delivery.header('Authorization') === 'Bearer t0ken',
    });
    const headers: Record<string, string> = { authorization: 'Bearer t0ken', 'x-event': 'e-3' };
    const fastifyStyle = { header: (name: string) => headers[name], body: Buffer.from('{}') };

    const reply = await guard.reply(fastifyStyle, eventIds.header('X-Event'), (event) => event.id);

    assert.equal(reply.status, 200);
    assert.deepEqual(JSON.parse(reply.body), { status: 'processed', id: 'e-3', result: 'e-3' });
    await executor.close();
    await deleteNamespace(redis, namespace);
  });

  it('rejects bad options with typed errors', async () => {
    const executor = new IdempotentExecutor({ redis, namespace: 'unused' });
    const verify = verifiers.github(SECRET);
    assert.throws(() => new WebhookGuard(executor, { source: '', verify }), {
      code: 'IDEMPOTENCY_INVALID_OPTION',
    });
    assert.throws(
      () => new WebhookGuard(executor, { source: 's', verify, whileRunning: 'no' as 'wait' }),
      { code: 'IDEMPOTENCY_INVALID_OPTION' },
    );
    assert.throws(
      () => new WebhookGuard(executor, { source: 's' } as unknown as WebhookGuardOptions),
      { code: 'IDEMPOTENCY_INVALID_OPTION', option: 'verify' },
    );
    assert.throws(() => new WebhookGuard(executor, { source: 's', verify, waitTimeoutMs: 0 }), {
      code: 'IDEMPOTENCY_INVALID_OPTION',
      option: 'waitTimeoutMs',
    });
    assert.throws(() => new WebhookGuard({} as IdempotentExecutor, { source: 's', verify }), {
      code: 'IDEMPOTENCY_INVALID_OPTION',
      option: 'executor',
    });
    assert.throws(() => verifiers.github([]), { code: 'IDEMPOTENCY_INVALID_OPTION' });
    assert.throws(() => verifiers.stripe('whsec_x', { toleranceSeconds: 0 }), {
      code: 'IDEMPOTENCY_INVALID_OPTION',
      option: 'toleranceSeconds',
    });
    await executor.close();
  });

  it('never puts a secret in an error message', () => {
    const secret = 'whsec_not!base64';
    assert.throws(
      () => verifiers.standardWebhooks(secret),
      (error: Error) => !error.message.includes('not!base64'),
    );
  });
});
