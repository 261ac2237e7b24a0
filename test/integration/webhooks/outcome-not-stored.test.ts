// Issue 10, item 8 (webhooks): a handler that succeeded with a result over the executor's
// `maxRecordBytes` answered 500 and ran again on every redelivery. The core now stores that the
// key ran (without the payload) and gives duplicates `IDEMPOTENCY_OUTCOME_NOT_STORED`; the guard
// acknowledges them: 200 duplicate with `resultStored: false` and no result, handler not run.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { sign } from '@octokit/webhooks-methods';
import { eventIds, verifiers } from '../../../src/adapters/webhooks/index.js';
import { connect, deleteNamespace, uniqueNamespace } from '../../helpers/redis.js';
import { Endpoints, sleep } from './helpers.js';

const redis = connect();
after(() => redis.quit());
const SECRET = 'gh-webhook-secret';
const HUGE = 'x'.repeat(8_000);

for (const frontEnd of ['fetch', 'express'] as const) {
  describe(`a handler result too large to store (${frontEnd} front end)`, () => {
    let namespace: string;
    const endpoints = new Endpoints(redis, () => namespace);
    let runs: number;

    const start = () =>
      endpoints.start(
        frontEnd,
        { source: 'github', verify: verifiers.github(SECRET) },
        {
          eventId: eventIds.github,
          handle: async () => {
            runs++;
            await sleep(200);
            return { report: HUGE };
          },
        },
        { maxRecordBytes: 1_024 },
      );
    const deliver = async (url: string, id: string) => {
      const payload = '{"action":"completed"}';
      return fetch(url, {
        method: 'POST',
        headers: { 'x-github-delivery': id, 'x-hub-signature-256': await sign(SECRET, payload) },
        body: payload,
      });
    };

    beforeEach(() => {
      namespace = uniqueNamespace('webhooks-large');
      runs = 0;
    });
    afterEach(async () => {
      await endpoints.stop();
      await deleteNamespace(redis, namespace);
    });

    it('answers the first delivery with its result and acknowledges redeliveries without running the handler again', async () => {
      const { url } = await start();

      const first = await deliver(url, 'big-1');
      const redelivered = await deliver(url, 'big-1');

      assert.equal(first.status, 200);
      const processed = await first.json();
      assert.equal(processed.status, 'processed');
      assert.equal(processed.result.report.length, HUGE.length);
      assert.equal(redelivered.status, 200);
      assert.deepEqual(await redelivered.json(), {
        status: 'duplicate',
        id: 'big-1',
        resultStored: false,
      });
      assert.equal(runs, 1);
    });

    it('acknowledges a redelivery that waited for the running handler, on another server too', async () => {
      const [a, b] = [await start(), await start()];

      const first = deliver(a.url, 'big-2');
      await sleep(50);
      const [sameServer, otherServer] = await Promise.all([
        deliver(a.url, 'big-2'),
        deliver(b.url, 'big-2'),
      ]);

      assert.equal((await first).status, 200);
      assert.equal(otherServer.status, 200);
      assert.deepEqual(await otherServer.json(), {
        status: 'duplicate',
        id: 'big-2',
        resultStored: false,
      });
      // In the first one's process the redelivery may share the running call and so get the
      // result itself; either way it is a duplicate, and whatever it says is true.
      assert.equal(sameServer.status, 200);
      const joined = await sameServer.json();
      assert.equal(joined.status, 'duplicate');
      assert.ok(
        joined.resultStored === false
          ? !('result' in joined)
          : joined.result.report.length === HUGE.length,
      );
      assert.equal(runs, 1);
    });
  });
}
