// Issue 10, item 6: ids and sources that are not well-formed Unicode. UTF-8 turns every lone
// surrogate into U+FFFD, so "s\uD800", "s\uDC00" and "s\uFFFD" would be one Redis key and the
// second event would replay the first's result. They are refused (an invalid key, an invalid
// option) and never collide; every async API rejects rather than throwing synchronously.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import Stripe from 'stripe';
import { eventIds, verifiers, WebhookGuard } from '../../../src/adapters/webhooks/index.js';
import { connect, deleteNamespace, uniqueNamespace } from '../../helpers/redis.js';
import { Endpoints } from './helpers.js';

const redis = connect();
after(() => redis.quit());
const SECRET = 'whsec_stripe_secret';
const stripe = new Stripe('sk_test_not_used');

describe('webhook ids and sources that are not well-formed Unicode', () => {
  let namespace: string;
  const endpoints = new Endpoints(redis, () => namespace);

  beforeEach(() => {
    namespace = uniqueNamespace('webhooks-unicode');
  });
  afterEach(async () => {
    await endpoints.stop();
    await deleteNamespace(redis, namespace);
  });

  it('refuses a source with a lone surrogate when the guard is built', () => {
    const executor = endpoints.executor();
    for (const source of ['stripe\uD800', 'stripe\uDC00']) {
      assert.throws(() => new WebhookGuard(executor, { source, verify: false }), {
        code: 'IDEMPOTENCY_INVALID_OPTION',
        option: 'source',
      });
    }
  });

  it('rejects (never throws) process() for an id with a lone surrogate, and the ids never collide', async () => {
    const guard = new WebhookGuard(endpoints.executor(), { source: 'queue', verify: false });
    const handled: string[] = [];
    const handle = (id: string) => () => {
      handled.push(id);
      return id;
    };

    let high: Promise<unknown> | undefined;
    let low: Promise<unknown> | undefined;
    assert.doesNotThrow(() => {
      high = guard.process('s\uD800', handle('high'));
      low = guard.process('s\uDC00', handle('low'));
    });
    const invalidKey = {
      code: 'IDEMPOTENCY_INVALID_KEY',
      message: /webhook event id .*well-formed/,
    };
    await assert.rejects(high!, invalidKey);
    await assert.rejects(low!, invalidKey);
    await assert.rejects(guard.process(42 as unknown as string, handle('number')), {
      code: 'IDEMPOTENCY_INVALID_KEY',
    });
    const replacement = await guard.process('s\uFFFD', handle('replacement'));

    assert.deepEqual(replacement, { status: 'processed', id: 's\uFFFD', result: 'replacement' });
    assert.deepEqual(handled, ['replacement']);
    assert.throws(() => guard.executorKeyOf('s\uD800'), { code: 'IDEMPOTENCY_INVALID_KEY' });
  });

  it('answers 400 invalid-key to a signed Stripe event whose JSON id has a lone surrogate', async () => {
    const handled: string[] = [];
    const { url } = await endpoints.start(
      'fetch',
      { source: 'stripe', verify: verifiers.stripe(SECRET) },
      {
        eventId: eventIds.stripe,
        handle: (event) => {
          handled.push(event.id);
          return event.id;
        },
      },
    );
    // JSON escapes carry lone surrogates through a valid UTF-8 body: "\ud800" parses to one.
    const deliver = (jsonId: string) => {
      const payload = `{"id":"${jsonId}","type":"charge.succeeded"}`;
      const header = stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET });
      return fetch(url, { method: 'POST', headers: { 'stripe-signature': header }, body: payload });
    };

    const high = await deliver('evt_\\ud800');
    const low = await deliver('evt_\\udc00');
    const replacement = await deliver('evt_\\ufffd');

    for (const response of [high, low]) {
      assert.equal(response.status, 400);
      const problem = await response.json();
      assert.match(problem.type, /\/problems\/webhooks\/invalid-key$/);
      assert.match(problem.detail, /webhook event id/);
    }
    assert.equal(replacement.status, 200);
    assert.equal((await replacement.json()).status, 'processed');
    assert.deepEqual(handled, ['evt_\uFFFD']);
  });
});
