// Item 1 of issue 10: clients that time out mid-request and retry with the same key, as SDKs do.
// A client going away must neither free the key nor lose the handler's response.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import Stripe from 'stripe';
import { connect } from '../../helpers/redis.js';
import { FRONT_ENDS, sleep, useOrderApis } from './fixture.js';

const redis = connect();
after(() => redis.quit());

for (const frontEnd of FRONT_ENDS) {
  describe(`clients that abort mid-request, through ${frontEnd}`, () => {
    const apis = useOrderApis(frontEnd, redis);

    it('runs the handler once for the stripe SDK timing out and retrying, and the SDK ends with its answer', async () => {
      const url = new URL(await apis.start({}, 700));
      // stripe-node sends its own Idempotency-Key on POST and reuses it on every retry.
      const stripe = new Stripe('sk_test_x', {
        host: url.hostname,
        port: Number(url.port),
        protocol: 'http',
        timeout: 400,
        maxNetworkRetries: 2,
      });

      const customer = await stripe.customers.create({ email: 'a@example.com' });

      assert.equal(customer.id, 'cus_1');
      assert.equal(await apis.runs(), 1);
    });

    it('runs the handler once for a fetch aborted at 150 ms and retried at 300 ms with the same key', async () => {
      const url = await apis.start({}, 700);
      const order = (signal?: AbortSignal) =>
        fetch(`${url}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': 'k-abort' },
          body: JSON.stringify({ item: 'book' }),
          ...(signal === undefined ? {} : { signal }),
        });
      const started = Date.now();

      const aborted = order(AbortSignal.timeout(150));
      await assert.rejects(aborted, { name: 'TimeoutError' });
      await sleep(300 - (Date.now() - started));
      const retry = await order();
      const replay = await order();

      assert.equal(retry.status, 201);
      assert.equal((await retry.json()).order, 'ord_1');
      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
      assert.equal((await replay.json()).order, 'ord_1');
      assert.equal(await apis.runs(), 1);
    });
  });
}
