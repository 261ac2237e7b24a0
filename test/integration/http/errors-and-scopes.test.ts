// Items 3, 4 and 6 of issue 10: a handler that throws stores nothing on every front end; header
// names are case-insensitive in the request view; a scope that is no scope fails loudly.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { connect } from '../../helpers/redis.js';
import { FRONT_ENDS, useOrderApis } from './fixture.js';
import { post, problemType } from './post.js';
import type { FailMode } from './servers.js';

const redis = connect();
after(() => redis.quit());

const FAIL_MODES: Record<(typeof FRONT_ENDS)[number], readonly FailMode[]> = {
  fetch: ['sync', 'async'],
  express: ['sync', 'async', 'next'],
  fastify: ['sync', 'async', 'send'],
};

for (const frontEnd of FRONT_ENDS) {
  describe(`thrown errors and scopes through ${frontEnd}`, () => {
    const apis = useOrderApis(frontEnd, redis);

    for (const mode of FAIL_MODES[frontEnd]) {
      it(`stores nothing when the handler fails with a 409 error (${mode}): the retry runs it again`, async () => {
        const url = await apis.start();

        const first = await post(`${url}/conflicts?mode=${mode}`, 'k-throw');
        const retry = await post(`${url}/conflicts?mode=${mode}`, 'k-throw');

        assert.equal(first.status, 409);
        assert.equal(retry.status, 409);
        assert.equal(retry.headers.get('idempotent-replayed'), null);
        assert.equal(await apis.runs(), 2);
      });
    }

    it('reads mixed-case header names in scope, so tenants A and B never share a key', async () => {
      const url = await apis.start({ scope: (request) => request.header('X-Tenant') });

      const a = await post(`${url}/orders`, 'k-tenant', undefined, { 'X-Tenant': 'tenant-a' });
      const b = await post(`${url}/orders`, 'k-tenant', undefined, { 'x-TENANT': 'tenant-b' });
      const aAgain = await post(`${url}/orders`, 'k-tenant', undefined, {
        'x-tenant': 'tenant-a',
      });

      assert.equal(a.status, 201);
      assert.equal(b.status, 201);
      assert.equal(b.headers.get('idempotent-replayed'), null);
      assert.equal((await b.json()).order, 'ord_2');
      assert.equal(aAgain.headers.get('idempotent-replayed'), 'true');
      assert.equal((await aAgain.json()).order, 'ord_1');
      assert.equal(await apis.runs(), 2);
    });

    it('fails the request with 500 problem+json naming `scope` when scope returns no scope', async () => {
      const returned = new Map<string, unknown>([
        ['missing', undefined],
        ['empty', ''],
        ['number', 42],
        ['high-surrogate', 'tenant-\uD800'],
        ['low-surrogate', 'tenant-\uDC00'],
      ]);
      const url = await apis.start({
        scope: (request) => returned.get(request.header('X-Case') ?? '') as string | undefined,
      });

      for (const name of returned.keys()) {
        const response = await post(`${url}/orders`, 'k-scope', undefined, { 'x-case': name });

        assert.equal(response.status, 500, name);
        assert.equal(response.headers.get('content-type'), 'application/problem+json');
        const problem = await response.json();
        assert.equal(problem.type, problemType('invalid-scope'));
        assert.match(problem.detail, /`scope`/);
      }
      assert.equal(await apis.runs(), 0);
    });
  });
}
