// The built-in verifiers against each sender's own signing library, not a signer written here:
// deliveries are signed by `standardwebhooks` (Webhook#sign), `svix` (Svix's Webhook#sign, sent
// with the svix-* headers Svix sends), `stripe` (webhooks.generateTestHeaderString) and
// `@octokit/webhooks-methods` (sign), sent over real HTTP to a guard behind a real server; each
// library's own verifier is asked about the same request where that shows it is genuine.
//
// Shopify publishes no sender library. Its official app library, `@shopify/shopify-api`, is the
// reference instead: a request is signed with the algorithm Shopify documents (HMAC-SHA256 of the
// raw body with the client secret, base64) and a server asks both `shopify.webhooks.validate` and
// our verifier about every request of a table (both header families, wrong secret, changed body,
// hex instead of base64, no HMAC, an empty body, both families at once). They must agree on every
// row: what Shopify's validation accepts ours accepts, and the other way round.
import '@shopify/shopify-api/adapters/node';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { sign as githubSign, verify as githubVerify } from '@octokit/webhooks-methods';
import { ApiVersion, LogSeverity, shopifyApi } from '@shopify/shopify-api';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import Stripe from 'stripe';
import { Webhook as SvixWebhook } from 'svix';
import {
  deliveryOf,
  type EventIdExtractor,
  eventIds,
  verifiers,
  type WebhookVerifier,
} from '../../../src/adapters/webhooks/index.js';
import { connect, deleteNamespace, uniqueNamespace } from '../../helpers/redis.js';
import { Endpoints, listen } from './helpers.js';

const redis = connect();
after(() => redis.quit());

const standardSecret = () => `whsec_${randomBytes(24).toString('base64')}`;
const stripe = new Stripe('sk_test_not_used');
const nowSeconds = () => Math.floor(Date.now() / 1000);

for (const frontEnd of ['fetch', 'express'] as const) {
  describe(`verifiers against the senders' own libraries (${frontEnd} front end)`, () => {
    let namespace: string;
    const endpoints = new Endpoints(redis, () => namespace);

    const endpoint = async (source: string, verify: WebhookVerifier, eventId: EventIdExtractor) =>
      (
        await endpoints.start(
          frontEnd,
          { source, verify },
          { eventId, handle: (event) => Buffer.from(event.body).toString() },
        )
      ).url;
    const post = async (url: string, headers: Record<string, string>, body: string) => {
      const response = await fetch(url, { method: 'POST', headers, body });
      return { status: response.status, body: await response.json() };
    };

    beforeEach(() => {
      namespace = uniqueNamespace('webhooks-senders');
    });
    afterEach(async () => {
      await endpoints.stop();
      await deleteNamespace(redis, namespace);
    });

    describe('Standard Webhooks', () => {
      it('accepts what standardwebhooks signs and keys it by webhook-id', async () => {
        const secret = standardSecret();
        const url = await endpoint(
          'sw',
          verifiers.standardWebhooks(secret),
          eventIds.standardWebhooks,
        );
        const payload = '{"type":"invoice.paid"}';
        const sent = new Date();
        const headers = {
          'webhook-id': 'msg_1',
          'webhook-timestamp': String(Math.floor(sent.getTime() / 1000)),
          'webhook-signature': new StandardWebhook(secret).sign('msg_1', sent, payload),
        };

        const first = await post(url, headers, payload);
        const again = await post(url, headers, payload);

        assert.equal(first.status, 200);
        assert.deepEqual(first.body, { status: 'processed', id: 'msg_1', result: payload });
        assert.equal(again.body.status, 'duplicate');
      });

      it('accepts what Svix sends (svix-id, svix-timestamp, svix-signature) and keys it by svix-id', async () => {
        const secret = standardSecret();
        const url = await endpoint(
          'svix',
          verifiers.standardWebhooks(secret),
          eventIds.standardWebhooks,
        );
        const payload = '{"type":"user.created"}';
        const sent = new Date();
        const headers = {
          'Svix-Id': 'msg_svix_1',
          'Svix-Timestamp': String(Math.floor(sent.getTime() / 1000)),
          'Svix-Signature': new SvixWebhook(secret).sign('msg_svix_1', sent, payload),
        };
        // Svix's own verifier takes the request as genuine.
        assert.doesNotThrow(() => new SvixWebhook(secret).verify(payload, headers));

        const response = await post(url, headers, payload);

        assert.equal(response.status, 200);
        assert.deepEqual(response.body, { status: 'processed', id: 'msg_svix_1', result: payload });
      });

      it('refuses a signature moved to another id or body, another secret, and a time outside the tolerance', async () => {
        const secret = standardSecret();
        const url = await endpoint(
          'sw',
          verifiers.standardWebhooks(secret),
          eventIds.standardWebhooks,
        );
        const lenient = await endpoint(
          'sw-lenient',
          verifiers.standardWebhooks(secret, { toleranceSeconds: 600 }),
          eventIds.standardWebhooks,
        );
        const payload = '{"n":1}';
        const signed = (id: string, at: Date, key = secret, body = payload) => ({
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
          'webhook-signature': new StandardWebhook(key).sign(id, at, body),
        });
        const now = new Date();
        const sixMinutesAgo = new Date(Date.now() - 6 * 60_000);
        const sixMinutesAhead = new Date(Date.now() + 6 * 60_000);

        const movedToNewId = { ...signed('msg_a', now), 'webhook-id': 'msg_b' };
        assert.equal((await post(url, movedToNewId, payload)).status, 401);
        assert.equal((await post(url, signed('msg_c', now), '{"n":2}')).status, 401);
        assert.equal(
          (await post(url, signed('msg_d', now, standardSecret()), payload)).status,
          401,
        );
        const stale = signed('msg_e', sixMinutesAgo);
        assert.throws(() => new StandardWebhook(secret).verify(payload, stale), /too old/);
        assert.equal((await post(url, stale, payload)).status, 401);
        assert.equal((await post(url, signed('msg_f', sixMinutesAhead), payload)).status, 401);
        assert.equal((await post(lenient, stale, payload)).status, 200);
        assert.equal((await post(url, signed('msg_g', now), payload)).status, 200);
      });

      it('accepts any of several signatures, and a signature by any of several secrets', async () => {
        const [oldSecret, newSecret] = [standardSecret(), standardSecret()];
        const onlyNew = await endpoint(
          'sw-new',
          verifiers.standardWebhooks(newSecret),
          eventIds.standardWebhooks,
        );
        const both = await endpoint(
          'sw-both',
          verifiers.standardWebhooks([newSecret, oldSecret]),
          eventIds.standardWebhooks,
        );
        const payload = '{"n":3}';
        const at = new Date();
        const bySecret = (key: string, id: string) =>
          new StandardWebhook(key).sign(id, at, payload);
        const headers = (id: string, signature: string) => ({
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
          'webhook-signature': signature,
        });

        const rotating = headers(
          'msg_r1',
          `v1a,c2lnbmF0dXJl ${bySecret(oldSecret, 'msg_r1')} ${bySecret(newSecret, 'msg_r1')}`,
        );
        assert.equal((await post(onlyNew, rotating, payload)).status, 200);
        const byOld = headers('msg_r2', bySecret(oldSecret, 'msg_r2'));
        assert.equal((await post(both, byOld, payload)).status, 200);
        assert.equal((await post(onlyNew, byOld, payload)).status, 401);
      });
    });

    describe('Stripe', () => {
      it('accepts what stripe signs and keys it by the event id in the body', async () => {
        const secret = `whsec_${randomBytes(16).toString('hex')}`;
        const url = await endpoint('stripe', verifiers.stripe(secret), eventIds.stripe);
        const payload = JSON.stringify({ id: 'evt_1', type: 'checkout.session.completed' });
        const header = stripe.webhooks.generateTestHeaderString({ payload, secret });
        assert.ok(stripe.webhooks.constructEvent(payload, header, secret));

        const first = await post(url, { 'Stripe-Signature': header }, payload);
        const again = await post(url, { 'stripe-signature': header }, payload);

        assert.deepEqual(first.body, { status: 'processed', id: 'evt_1', result: payload });
        assert.equal(again.body.status, 'duplicate');
      });

      it('accepts a header with several v1 signatures (a rolled secret) and any of several secrets', async () => {
        const [oldSecret, newSecret] = ['whsec_old_secret', 'whsec_new_secret'];
        const onlyNew = await endpoint('stripe-new', verifiers.stripe(newSecret), eventIds.stripe);
        const both = await endpoint(
          'stripe-both',
          verifiers.stripe([newSecret, oldSecret]),
          eventIds.stripe,
        );
        const payload = JSON.stringify({ id: 'evt_2', type: 'charge.succeeded' });
        const timestamp = nowSeconds();
        const byOld = stripe.webhooks.generateTestHeaderString({
          payload,
          secret: oldSecret,
          timestamp,
        });
        const byNew = stripe.webhooks.generateTestHeaderString({
          payload,
          secret: newSecret,
          timestamp,
        });
        // While a secret rolls, Stripe signs with both: t=…,v1=<old>,v1=<new>.
        const rolling = `${byOld},${byNew.split(',')[1]}`;
        assert.ok(stripe.webhooks.constructEvent(payload, rolling, newSecret));

        assert.equal((await post(onlyNew, { 'stripe-signature': rolling }, payload)).status, 200);
        assert.equal((await post(both, { 'stripe-signature': byOld }, payload)).status, 200);
        assert.equal((await post(onlyNew, { 'stripe-signature': byOld }, payload)).status, 401);
      });

      it('refuses a changed body (another event id), a stale timestamp unless tolerated, and no header', async () => {
        const secret = 'whsec_stripe_secret';
        const url = await endpoint('stripe', verifiers.stripe(secret), eventIds.stripe);
        const lenient = await endpoint(
          'stripe-lenient',
          verifiers.stripe(secret, { toleranceSeconds: 600 }),
          eventIds.stripe,
        );
        const payload = JSON.stringify({ id: 'evt_3' });
        const header = stripe.webhooks.generateTestHeaderString({ payload, secret });
        const stale = stripe.webhooks.generateTestHeaderString({
          payload,
          secret,
          timestamp: nowSeconds() - 400,
        });
        assert.throws(() => stripe.webhooks.constructEvent(payload, stale, secret), /tolerance/);

        const otherId = JSON.stringify({ id: 'evt_4' });
        assert.equal((await post(url, { 'stripe-signature': header }, otherId)).status, 401);
        assert.equal((await post(url, { 'stripe-signature': stale }, payload)).status, 401);
        assert.equal((await post(url, {}, payload)).status, 401);
        assert.equal((await post(lenient, { 'stripe-signature': stale }, payload)).status, 200);
      });
    });

    describe('GitHub', () => {
      it('accepts what @octokit/webhooks-methods signs, with any of several secrets, and refuses another secret', async () => {
        const url = await endpoint('github', verifiers.github('gh-secret'), eventIds.github);
        const rotating = await endpoint(
          'github-rotating',
          verifiers.github(['gh-secret-new', 'gh-secret']),
          eventIds.github,
        );
        const payload = '{"action":"opened"}';
        const signature = await githubSign('gh-secret', payload);
        assert.equal(await githubVerify('gh-secret', payload, signature), true);
        const headers = (id: string, sig: string) => ({
          'X-GitHub-Delivery': id,
          'X-Hub-Signature-256': sig,
        });

        const first = await post(url, headers('gh-1', signature), payload);
        assert.deepEqual(first.body, { status: 'processed', id: 'gh-1', result: payload });
        assert.equal((await post(rotating, headers('gh-2', signature), payload)).status, 200);
        const other = await githubSign('another-secret', payload);
        assert.equal((await post(url, headers('gh-3', other), payload)).status, 401);
      });
    });

    describe('Shopify', () => {
      it('keys a Shopify Events delivery (headers without X-) by Shopify-Webhook-Id', async () => {
        const secret = 'shpss_client_secret';
        const url = await endpoint('shopify', verifiers.shopify(secret), eventIds.shopify);
        const payload = '{"id":1,"title":"T-Shirt"}';
        const hmac = createHmac('sha256', secret).update(payload).digest('base64');
        const headers = (webhookId: string) => ({
          'Shopify-Hmac-Sha256': hmac,
          'Shopify-Webhook-Id': webhookId,
          'Shopify-Event-Id': 'event-1',
          'Shopify-Topic': 'products/update',
        });

        const first = await post(url, headers('wh-1'), payload);
        const retried = await post(url, headers('wh-1'), payload);
        const otherSubscription = await post(url, headers('wh-2'), payload);

        assert.deepEqual(first.body, { status: 'processed', id: 'wh-1', result: payload });
        assert.equal(retried.body.status, 'duplicate');
        assert.equal(otherSubscription.body.status, 'processed');
      });
    });
  });
}

describe('the Shopify verifier and @shopify/shopify-api', () => {
  const secret = 'shpss_client_secret';
  const shopify = shopifyApi({
    apiKey: 'api-key',
    apiSecretKey: secret,
    apiVersion: ApiVersion.January25,
    hostName: 'app.example.com',
    isEmbeddedApp: false,
    logger: { level: LogSeverity.Error },
  });
  const ours = verifiers.shopify(secret);

  /** Asks shopify-api's `webhooks.validate` and our verifier about the same real request. */
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const theirs = await shopify.webhooks.validate({
      rawBody: body.toString('utf8'),
      rawRequest: req,
      rawResponse: res,
    });
    const mine = await ours(deliveryOf(req.headers, body));
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ shopify: theirs.valid, ours: mine }));
  });
  after(() => new Promise((resolve) => server.close(resolve)));

  const hmacOf = (body: string, key = secret, encoding: 'base64' | 'hex' = 'base64') =>
    createHmac('sha256', key).update(body).digest(encoding);
  const webhookHeaders = (hmac: string | undefined) => ({
    ...(hmac === undefined ? {} : { 'X-Shopify-Hmac-Sha256': hmac }),
    'X-Shopify-Topic': 'orders/create',
    'X-Shopify-Shop-Domain': 'shop.myshopify.com',
    'X-Shopify-API-Version': '2025-01',
    'X-Shopify-Webhook-Id': 'wh-1',
    'X-Shopify-Event-Id': 'ev-1',
  });
  const eventsHeaders = (hmac: string) => ({
    'shopify-hmac-sha256': hmac,
    'shopify-topic': 'orders/create',
    'shopify-shop-domain': 'shop.myshopify.com',
    'shopify-api-version': '2025-01',
    'shopify-webhook-id': 'wh-2',
    'shopify-event-id': 'ev-2',
  });

  it('agrees with shopify.webhooks.validate on every request, and both accept the genuine ones', async () => {
    const url = await listen(server);
    const body = '{"id":820982911946154500,"email":"jon@example.com"}';
    const rows: { name: string; headers: Record<string, string>; body: string; valid: boolean }[] =
      [
        { name: 'webhook headers', headers: webhookHeaders(hmacOf(body)), body, valid: true },
        { name: 'events headers', headers: eventsHeaders(hmacOf(body)), body, valid: true },
        {
          name: 'upper-case names',
          headers: { 'X-SHOPIFY-HMAC-SHA256': hmacOf(body), ...webhookHeaders(undefined) },
          body,
          valid: true,
        },
        {
          name: 'another secret',
          headers: webhookHeaders(hmacOf(body, 'other')),
          body,
          valid: false,
        },
        {
          name: 'changed body',
          headers: eventsHeaders(hmacOf(body)),
          body: body.replace('jon', 'eve'),
          valid: false,
        },
        {
          name: 'hex, not base64',
          headers: webhookHeaders(hmacOf(body, secret, 'hex')),
          body,
          valid: false,
        },
        { name: 'no HMAC', headers: webhookHeaders(undefined), body, valid: false },
        { name: 'empty body', headers: webhookHeaders(hmacOf('')), body: '', valid: false },
        {
          name: 'both families, the events HMAC wrong',
          headers: { ...webhookHeaders(hmacOf(body)), ...eventsHeaders(hmacOf('x')) },
          body,
          valid: false,
        },
        {
          name: 'both families, the events HMAC right',
          headers: { ...webhookHeaders(hmacOf('x')), ...eventsHeaders(hmacOf(body)) },
          body,
          valid: true,
        },
      ];

    for (const row of rows) {
      const response = await fetch(url, { method: 'POST', headers: row.headers, body: row.body });
      const verdicts = await response.json();
      assert.deepEqual(verdicts, { shopify: row.valid, ours: row.valid }, row.name);
    }
  });
});
