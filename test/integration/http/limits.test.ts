// Items 2 and 8(a) of issue 10: a duplicate's wait is bounded by waitTimeoutMs in the process
// that runs the handler too; a response too large to store is still never executed twice.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { connect } from '../../helpers/redis.js';
import { FRONT_ENDS, sleep, useOrderApis } from './fixture.js';
import { post, problemType } from './post.js';
import { BIG_RESPONSE_BYTES } from './servers.js';

const redis = connect();
after(() => redis.quit());

for (const frontEnd of FRONT_ENDS) {
  describe(`limits through ${frontEnd}`, () => {
    const apis = useOrderApis(frontEnd, redis);

    it('answers a same-process duplicate 409 + Retry-After after waitTimeoutMs, well before the 900 ms handler ends', async () => {
      const url = await apis.start({ waitTimeoutMs: 150, retryAfterSeconds: 2 }, 900);

      const first = post(`${url}/orders`, 'k-wait');
      await sleep(50);
      const sent = Date.now();
      const duplicate = await post(`${url}/orders`, 'k-wait');
      const waitedMs = Date.now() - sent;

      assert.equal(duplicate.status, 409);
      assert.equal(duplicate.headers.get('retry-after'), '2');
      assert.equal((await duplicate.json()).type, problemType('in-progress'));
      assert.ok(waitedMs < 600, `the duplicate waited ${waitedMs} ms`);
      assert.equal((await first).status, 201);
      assert.equal(await apis.runs(), 1);
    });

    it('sends a response over maxRecordBytes to its client and answers duplicates 500 outcome-not-stored', async () => {
      const url = await apis.start();

      const first = await post(`${url}/big`, 'k-big');
      const firstBody = Buffer.from(await first.arrayBuffer());
      const duplicate = await post(`${url}/big`, 'k-big');

      assert.equal(first.status, 201);
      assert.equal(firstBody.byteLength, BIG_RESPONSE_BYTES);
      assert.equal(duplicate.status, 500);
      assert.equal(duplicate.headers.get('content-type'), 'application/problem+json');
      assert.equal((await duplicate.json()).type, problemType('outcome-not-stored'));
      assert.equal(await apis.runs(), 1);
    });
  });
}
