// Issue 10, item 9: a delivery is verified before its event id is claimed or replayed. Before,
// the handler verified signatures itself, so (a) an unsigned delivery reusing a processed id was
// answered 200 "duplicate" with the stored result, and (b) a forged delivery that claimed an id
// first made the concurrent genuine delivery of that id fail with 500 (the forged run's error
// reached the waiting genuine one).
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { sign } from '@octokit/webhooks-methods';
import {
  type Delivery,
  eventIds,
  verifiers,
  type WebhookVerifier,
} from '../../../src/adapters/webhooks/index.js';
import { connect, deleteNamespace, uniqueNamespace } from '../../helpers/redis.js';
import { Endpoints, keysOf, StoreTraffic, sleep } from './helpers.js';

const redis = connect();
after(() => redis.quit());
const SECRET = 'gh-webhook-secret';

for (const frontEnd of ['fetch', 'express'] as const) {
  describe(`verification before deduplication (${frontEnd} front end)`, () => {
    let namespace: string;
    const endpoints = new Endpoints(redis, () => namespace);
    let handled: string[];
    let traffic: StoreTraffic | undefined;

    /** A GitHub endpoint whose handler trusts the guard's verification and takes `workMs`. */
    const startGithub = async (verify: WebhookVerifier = verifiers.github(SECRET), workMs = 50) =>
      endpoints.start(
        frontEnd,
        { source: 'github', verify },
        {
          eventId: eventIds.github,
          handle: async (event) => {
            await sleep(workMs);
            const payload = Buffer.from(event.body).toString();
            handled.push(payload);
            return { confidential: `result of ${payload}` };
          },
        },
      );

    const deliver = (
      url: string,
      id: string,
      payload: string,
      signature: string | undefined,
    ): Promise<Response> =>
      fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-github-delivery': id,
          ...(signature === undefined ? {} : { 'x-hub-signature-256': signature }),
        },
        body: payload,
      });
    const genuine = async (url: string, id: string, payload: string) =>
      deliver(url, id, payload, await sign(SECRET, payload));
    const forged = async (url: string, id: string, payload: string) =>
      deliver(url, id, payload, await sign('not-the-secret', payload));

    beforeEach(() => {
      namespace = uniqueNamespace('webhooks-verify');
      handled = [];
    });
    afterEach(async () => {
      traffic?.stop();
      traffic = undefined;
      await endpoints.stop();
      await deleteNamespace(redis, namespace);
    });

    it('answers an unsigned or forged delivery reusing a processed event id with 401, not the stored result, and sends Redis nothing', async () => {
      const { url } = await startGithub();
      const processed = await genuine(url, 'd-1', '{"n":1}');
      assert.equal((await processed.json()).status, 'processed');
      traffic = await StoreTraffic.watch(redis, namespace);

      const unsigned = await deliver(url, 'd-1', '{"n":1}', undefined);
      const wrongSecret = await forged(url, 'd-1', '{"n":1}');
      const badHeader = await deliver(url, 'd-1', '{"n":1}', 'sha1=0000');
      await traffic.settled();

      for (const response of [unsigned, wrongSecret, badHeader]) {
        assert.equal(response.status, 401);
        assert.equal(response.headers.get('content-type'), 'application/problem+json');
        const text = await response.text();
        assert.match(JSON.parse(text).type, /\/problems\/webhooks\/invalid-signature$/);
        assert.doesNotMatch(text, /confidential|duplicate/);
      }
      assert.deepEqual(traffic.take(), [], 'no command naming the namespace reached Redis');
      assert.deepEqual(handled, ['{"n":1}']);
      const redelivered = await genuine(url, 'd-1', '{"n":1}');
      await traffic.settled();
      assert.equal((await redelivered.json()).status, 'duplicate');
      assert.notDeepEqual(traffic.take(), [], 'the watch sees a verified delivery reach Redis');
    });

    it('writes no key for a forged delivery of a new event id, so the genuine one is processed after it', async () => {
      const { url, guard, executor } = await startGithub();
      traffic = await StoreTraffic.watch(redis, namespace);

      const response = await forged(url, 'd-2', '{"forged":true}');
      await traffic.settled();

      assert.equal(response.status, 401);
      assert.deepEqual(traffic.take(), []);
      assert.deepEqual(await keysOf(redis, namespace), []);
      assert.equal((await executor.inspect(guard.executorKeyOf('d-2'))).state, 'absent');
      const real = await genuine(url, 'd-2', '{"real":true}');
      assert.equal((await real.json()).status, 'processed');
      assert.deepEqual(handled, ['{"real":true}']);
    });

    it('does not let a forged delivery in flight claim the id of a concurrent genuine delivery', async () => {
      // A verifier that takes time (a key lookup, say): the forged delivery is still being
      // verified when the genuine one of the same id arrives. Were it deduplicated first, it
      // would hold the id and the genuine delivery would get its outcome (or its error).
      const github = verifiers.github(SECRET);
      const slowVerify = async (delivery: Delivery) => {
        await sleep(150);
        return github(delivery);
      };
      const { url } = await startGithub(slowVerify, 200);

      const forgedFirst = forged(url, 'd-3', '{"forged":true}');
      await sleep(30);
      const [forgedResponse, genuineResponse] = await Promise.all([
        forgedFirst,
        genuine(url, 'd-3', '{"real":true}'),
      ]);

      assert.equal(forgedResponse.status, 401);
      assert.equal(genuineResponse.status, 200);
      const outcome = await genuineResponse.json();
      assert.equal(outcome.status, 'processed');
      assert.deepEqual(outcome.result, { confidential: 'result of {"real":true}' });
      assert.deepEqual(handled, ['{"real":true}']);
    });

    it('refuses forged deliveries at once while a genuine delivery of the id runs, which it leaves alone', async () => {
      const { url } = await startGithub(undefined, 400);

      let genuineDone = false;
      const running = genuine(url, 'd-4', '{"real":true}').finally(() => {
        genuineDone = true;
      });
      await sleep(100);
      const forgedResponses = await Promise.all(
        Array.from({ length: 4 }, () => forged(url, 'd-4', '{"forged":true}')),
      );
      const answeredWhileRunning = !genuineDone;
      const genuineResponse = await running;

      assert.deepEqual(
        forgedResponses.map((r) => r.status),
        [401, 401, 401, 401],
      );
      assert.equal(answeredWhileRunning, true, 'the forged deliveries did not wait for the run');
      assert.equal(genuineResponse.status, 200);
      assert.equal((await genuineResponse.json()).status, 'processed');
      assert.deepEqual(handled, ['{"real":true}']);
    });

    it('runs a custom verifier, sync or async, and accepts only a `true` from it', async () => {
      const byToken: WebhookVerifier = (delivery) =>
        delivery.header('Authorization') === 'Bearer t0ken';
      const asyncByToken: WebhookVerifier = async (delivery) => byToken(delivery);
      const truthy = (() => 'yes') as unknown as WebhookVerifier;
      const throwing: WebhookVerifier = () => {
        throw new Error('key service down');
      };
      const send = (url: string, authorization: string) =>
        fetch(url, {
          method: 'POST',
          headers: { authorization, 'x-github-delivery': `c-${Math.random()}` },
          body: '{}',
        });

      const sync = (await startGithub(byToken)).url;
      const async = (await startGithub(asyncByToken)).url;
      const loose = (await startGithub(truthy)).url;
      const broken = (await startGithub(throwing)).url;

      assert.equal((await send(sync, 'Bearer t0ken')).status, 200);
      assert.equal((await send(sync, 'Bearer nope')).status, 401);
      assert.equal((await send(async, 'Bearer t0ken')).status, 200);
      assert.equal((await send(async, 'Bearer nope')).status, 401);
      assert.equal((await send(loose, 'Bearer t0ken')).status, 401);
      assert.equal((await send(broken, 'Bearer t0ken')).status, 401);
      assert.equal(handled.length, 2);
    });
  });
}
