// Items 5, 8(b) and 8(c) of issue 10: one rule for routes on every front end (keyed by scope +
// key, method and concrete path always compared), bodies no encoder can choke on, and long
// paths or scopes that never make a valid key "invalid".
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { connect } from '../../helpers/redis.js';
import { FRONT_ENDS, useOrderApis } from './fixture.js';
import { post, problemType } from './post.js';

const redis = connect();
after(() => redis.quit());

for (const frontEnd of FRONT_ENDS) {
  describe(`routes, bodies and key lengths through ${frontEnd}`, () => {
    const apis = useOrderApis(frontEnd, redis);

    it('answers 422 for one key on another concrete path or method, never a replay or a second run', async () => {
      const url = await apis.start();

      const first = await post(`${url}/orders/1/items`, 'k-route');
      const otherPath = await post(`${url}/orders/2/items`, 'k-route');
      const otherMethod = await post(`${url}/orders/1/items`, 'k-route', undefined, {}, 'PATCH');
      const same = await post(`${url}/orders/1/items`, 'k-route');

      assert.equal(first.status, 201);
      for (const reused of [otherPath, otherMethod]) {
        assert.equal(reused.status, 422);
        assert.equal((await reused.json()).type, problemType('key-reused'));
      }
      assert.equal(same.headers.get('idempotent-replayed'), 'true');
      assert.equal(await apis.runs(), 1);
    });

    it('never answers 5xx to a JSON body with lone surrogates: each is fingerprinted as sent', async () => {
      const url = await apis.start();
      const body = (codeUnit: string) => `{"item":"book \\${codeUnit}"}`;

      const high = await post(`${url}/orders`, 'k-surrogate', body('ud800'));
      const highAgain = await post(`${url}/orders`, 'k-surrogate', body('ud800'));
      const low = await post(`${url}/orders`, 'k-surrogate', body('udc00'));
      const replacement = await post(`${url}/orders`, 'k-surrogate', body('ufffd'));

      assert.equal(high.status, 201);
      assert.equal(highAgain.headers.get('idempotent-replayed'), 'true');
      assert.equal(low.status, 422, 'another lone surrogate is another body');
      assert.equal(replacement.status, 422, 'U+FFFD is another body');
      assert.equal(await apis.runs(), 1);
    });

    it('never answers 5xx to a JSON body with a __proto__ key', async () => {
      const url = await apis.start();
      const body = '{"__proto__":{"x":1},"item":"book"}';

      const first = await post(`${url}/orders`, 'k-proto', body);
      const again = await post(`${url}/orders`, 'k-proto', body);
      const other = await post(`${url}/orders`, 'k-proto', '{"__proto__":{"x":2},"item":"book"}');

      if (frontEnd === 'fastify') {
        // Fastify's own JSON parser refuses prototype poisoning before any handler or hook.
        assert.equal(first.status, 400);
        assert.equal(await apis.runs(), 0);
        return;
      }
      assert.equal(first.status, 201);
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      assert.equal(other.status, 422, 'the __proto__ key is part of the body');
      assert.equal(await apis.runs(), 1);
    });

    it('accepts a 255-character key on a long path in a long scope', async () => {
      const scope = `tenant-${'t'.repeat(1000)}`;
      const url = await apis.start({ scope: () => scope });
      const path = `${url}/orders/${'9'.repeat(900)}/items`;
      const key = 'k'.repeat(255);

      const first = await post(path, key);
      const again = await post(path, key);

      assert.equal(first.status, 201);
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      assert.equal(await apis.runs(), 1);
    });
  });
}
