import { createHmac, timingSafeEqual } from 'node:crypto';
import { InvalidOptionError } from '../../index.js';
import { assertOptionsObject, integerOption } from '../edge/index.js';
import type { Delivery } from './delivery.js';
import { shopifyHeader, standardWebhooksHeader } from './event-id.js';

/**
 * Decides whether a delivery comes from its sender. Only `true` accepts it; anything else
 * (false, a throw) and the delivery is refused before its event id is claimed or replayed.
 */
export type WebhookVerifier = (delivery: Delivery) => boolean | Promise<boolean>;

/** One signing secret, or several while a secret is being rotated (any one of them verifies). */
export type WebhookSecrets = string | readonly string[];

/** Options of the verifiers whose scheme signs a timestamp (Standard Webhooks, Stripe). */
export interface TimestampToleranceOptions {
  /**
   * How far the signed timestamp may be from this server's clock, seconds, either way. A
   * captured delivery cannot be replayed past it.
   * @defaultValue `300` (5 minutes, the tolerance of the senders' own libraries)
   */
  readonly toleranceSeconds?: number;
}

/** The defaults of {@link TimestampToleranceOptions}. */
export const defaultTimestampTolerance = Object.freeze({ toleranceSeconds: 300 });

/**
 * Built-in verifiers: an HMAC-SHA256 over the raw body (and, where the scheme signs them, the
 * id and timestamp), compared in constant time with every secret given.
 */
export const verifiers = Object.freeze({
  /**
   * Standard Webhooks (Svix and others): `webhook-signature` (or `svix-signature`), a
   * space-separated list of `v1,<base64>`, over `<id>.<timestamp>.<body>`, keyed with the
   * base64 secret after its `whsec_` prefix; the timestamp within `toleranceSeconds`.
   */
  standardWebhooks(
    secrets: WebhookSecrets,
    options: TimestampToleranceOptions = {},
  ): WebhookVerifier {
    const keys = secretList(secrets).map(standardWebhooksKey);
    const tolerance = toleranceOf(options);
    return (delivery) => {
      const id = standardWebhooksHeader(delivery, 'id');
      const timestamp = signedTimestamp(standardWebhooksHeader(delivery, 'timestamp'), tolerance);
      const signatures = standardWebhooksHeader(delivery, 'signature');
      if (!id || timestamp === undefined || !signatures) return false;
      const prefix = `${id}.${timestamp}.`;
      const expected = keys.map((key) => hmac(key, prefix, delivery.body).toString('base64'));
      return signatures
        .split(' ')
        .some((entry) => entry.startsWith('v1,') && matchesAny(entry.slice(3), expected));
    };
  },

  /**
   * Stripe: `Stripe-Signature: t=<timestamp>,v1=<hex>[,v1=<hex>…]` over `<timestamp>.<body>`,
   * keyed with the endpoint secret (`whsec_…`) as is; the timestamp within `toleranceSeconds`.
   */
  stripe(secrets: WebhookSecrets, options: TimestampToleranceOptions = {}): WebhookVerifier {
    const keys = secretList(secrets).map((secret) => Buffer.from(secret, 'utf8'));
    const tolerance = toleranceOf(options);
    return (delivery) => {
      const header = delivery.header('stripe-signature');
      if (!header) return false;
      let t: string | undefined;
      const signatures: string[] = [];
      for (const item of header.split(',')) {
        const at = item.indexOf('=');
        if (at < 0) continue;
        const [name, value] = [item.slice(0, at), item.slice(at + 1)];
        if (name === 't' && t === undefined) t = value;
        else if (name === 'v1') signatures.push(value);
      }
      const timestamp = signedTimestamp(t, tolerance);
      if (timestamp === undefined || signatures.length === 0) return false;
      const expected = keys.map((key) => hmac(key, `${timestamp}.`, delivery.body).toString('hex'));
      return signatures.some((signature) => matchesAny(signature, expected));
    };
  },

  /**
   * GitHub: `X-Hub-Signature-256: sha256=<hex>` over the body, keyed with the webhook secret.
   * GitHub signs neither the delivery id nor a time: see docs/adapters/webhooks.md.
   */
  github(secrets: WebhookSecrets): WebhookVerifier {
    const keys = secretList(secrets).map((secret) => Buffer.from(secret, 'utf8'));
    return (delivery) => {
      const header = delivery.header('x-hub-signature-256');
      if (!header?.startsWith('sha256=')) return false;
      const expected = keys.map((key) => hmac(key, '', delivery.body).toString('hex'));
      return matchesAny(header.slice('sha256='.length), expected);
    };
  },

  /**
   * Shopify: `Shopify-Hmac-Sha256` (Shopify Events) or `X-Shopify-Hmac-Sha256`, base64, over the
   * body, keyed with the app's client secret; an empty body is refused, as `@shopify/shopify-api`
   * refuses it. Shopify signs neither the webhook id nor a time: see docs/adapters/webhooks.md.
   */
  shopify(secrets: WebhookSecrets): WebhookVerifier {
    const keys = secretList(secrets).map((secret) => Buffer.from(secret, 'utf8'));
    return (delivery) => {
      const header = shopifyHeader(delivery, 'hmac-sha256');
      if (!header || delivery.body.byteLength === 0) return false;
      const expected = keys.map((key) => hmac(key, '', delivery.body).toString('base64'));
      return matchesAny(header, expected);
    };
  },
});

function hmac(key: Uint8Array, prefix: string, body: Uint8Array): Buffer {
  return createHmac('sha256', key).update(prefix, 'utf8').update(body).digest();
}

/**
 * Whether `received` equals one of `expected`, compared with `timingSafeEqual` (the lengths,
 * fixed by the scheme, are not secret). Every candidate is compared, matched or not.
 */
function matchesAny(received: string, expected: readonly string[]): boolean {
  const bytes = Buffer.from(received, 'utf8');
  let matched = false;
  for (const candidate of expected) {
    const other = Buffer.from(candidate, 'utf8');
    if (other.length === bytes.length && timingSafeEqual(other, bytes)) matched = true;
  }
  return matched;
}

/** The signed timestamp as the sender signed it (whole seconds), if within `tolerance` of now. */
function signedTimestamp(value: string | undefined, toleranceSeconds: number): number | undefined {
  if (value === undefined || !/^\d{1,15}$/.test(value)) return undefined;
  const seconds = Number(value);
  const now = Math.floor(Date.now() / 1000);
  return Math.abs(now - seconds) <= toleranceSeconds ? seconds : undefined;
}

function toleranceOf(options: TimestampToleranceOptions): number {
  assertOptionsObject(options);
  return integerOption(
    'toleranceSeconds',
    options.toleranceSeconds,
    defaultTimestampTolerance.toleranceSeconds,
  );
}

// A secret never appears in an error message: logs would carry it.
const REDACTED = '(a value not shown)';

function secretList(secrets: WebhookSecrets): readonly string[] {
  const list: readonly unknown[] = typeof secrets === 'string' ? [secrets] : secrets;
  if (!Array.isArray(list) || list.length === 0) {
    throw new InvalidOptionError('secrets', 'a secret or a non-empty array of secrets', secrets);
  }
  for (const secret of list) {
    if (typeof secret !== 'string' || secret.length === 0) {
      throw new InvalidOptionError('secrets', 'non-empty strings', REDACTED);
    }
  }
  return list as readonly string[];
}

/** A Standard Webhooks key: the base64 after `whsec_`. */
function standardWebhooksKey(secret: string): Buffer {
  const encoded = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
    throw new InvalidOptionError('secrets', 'base64 secrets (after a `whsec_` prefix)', REDACTED);
  }
  return Buffer.from(encoded, 'base64');
}
