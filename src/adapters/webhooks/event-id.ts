import type { Delivery } from './delivery.js';

/** Reads the event id of a delivery; undefined (or an empty string) when there is none. */
export type EventIdExtractor = (delivery: Delivery) => string | undefined;

/**
 * A Standard Webhooks header (`id`, `timestamp` or `signature`). Svix sends them as `svix-*`,
 * other senders as `webhook-*`; like Svix's own library, `svix-*` is read first. The id
 * extractor and the verifier both read through here, so the id that keys a delivery is always
 * the id its signature covers.
 */
export function standardWebhooksHeader(
  delivery: Delivery,
  field: 'id' | 'timestamp' | 'signature',
): string | undefined {
  return delivery.header(`svix-${field}`) ?? delivery.header(`webhook-${field}`);
}

/**
 * A Shopify header by its name without prefix (`hmac-sha256`, `webhook-id`, `event-id`): the
 * newer deliveries (Shopify Events) send `shopify-*`, webhooks `x-shopify-*`. Like
 * `@shopify/shopify-api`, the `shopify-*` spelling is read first.
 */
export function shopifyHeader(delivery: Delivery, name: string): string | undefined {
  return delivery.header(`shopify-${name}`) ?? delivery.header(`x-shopify-${name}`);
}

const fromHeader =
  (name: string): EventIdExtractor =>
  (delivery) =>
    delivery.header(name.toLowerCase());

/** Event id extractors for the common senders. */
export const eventIds = Object.freeze({
  /**
   * Standard Webhooks: the `webhook-id` header, or `svix-id` as Svix sends it. The id is
   * covered by the signature (`verifiers.standardWebhooks`).
   */
  standardWebhooks: ((delivery) => standardWebhooksHeader(delivery, 'id')) as EventIdExtractor,
  /**
   * GitHub: the `X-GitHub-Delivery` header (one per delivery; redeliveries keep it). Not covered
   * by the signature: see docs/adapters/webhooks.md.
   */
  github: fromHeader('x-github-delivery'),
  /**
   * Shopify: the webhook id, `Shopify-Webhook-Id` (Shopify Events) or `X-Shopify-Webhook-Id`.
   * Every delivery carries it and Shopify's retries of a delivery keep it; Shopify names it the
   * id to detect duplicate deliveries. Not covered by the signature.
   */
  shopify: ((delivery) => shopifyHeader(delivery, 'webhook-id')) as EventIdExtractor,
  /**
   * Shopify: the event id, `Shopify-Event-Id` or `X-Shopify-Event-Id`. Several subscriptions
   * to one event share it, so keying by it handles the event once for all of them (webhooks
   * may lack it). Not covered by the signature.
   */
  shopifyEvent: ((delivery) => shopifyHeader(delivery, 'event-id')) as EventIdExtractor,
  /** Stripe: the event's `id` in the JSON body (`evt_...`), covered by the signature. */
  stripe: ((delivery) => {
    try {
      const event: unknown = JSON.parse(Buffer.from(delivery.body).toString('utf8'));
      const id = (event as { id?: unknown } | null)?.id;
      return typeof id === 'string' ? id : undefined;
    } catch {
      return undefined;
    }
  }) as EventIdExtractor,
  /** Any header (the name in any case). */
  header: fromHeader,
});
