/** What an event id is read from: the delivery's headers and its raw body bytes. */
export interface Delivery {
  /** A header's value by lower-case name, or undefined. */
  header(name: string): string | undefined;
  /** The raw request body, exactly as received (what signatures are computed over). */
  readonly body: Uint8Array;
}

/** Reads the event id of a delivery; undefined (or an empty string) when there is none. */
export type EventIdExtractor = (delivery: Delivery) => string | undefined;

const fromHeader =
  (name: string): EventIdExtractor =>
  (delivery) =>
    delivery.header(name);

/** Event id extractors for the common senders. */
export const eventIds = Object.freeze({
  /** Standard Webhooks (Svix and others): the `webhook-id` header. */
  standardWebhooks: fromHeader('webhook-id'),
  /** GitHub: the `X-GitHub-Delivery` header (one per delivery; redeliveries keep it). */
  github: fromHeader('x-github-delivery'),
  /** Shopify: the `X-Shopify-Webhook-Id` header. */
  shopify: fromHeader('x-shopify-webhook-id'),
  /** Stripe: the event's `id` in the JSON body (`evt_...`). */
  stripe: ((delivery) => {
    try {
      const event: unknown = JSON.parse(Buffer.from(delivery.body).toString('utf8'));
      const id = (event as { id?: unknown } | null)?.id;
      return typeof id === 'string' ? id : undefined;
    } catch {
      return undefined;
    }
  }) as EventIdExtractor,
  /** Any header. */
  header: fromHeader,
});
