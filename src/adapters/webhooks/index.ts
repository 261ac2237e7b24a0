export type { Delivery, HeaderMap } from './delivery.js';
export { deliveryOf } from './delivery.js';
export type { EventIdExtractor } from './event-id.js';
export { eventIds } from './event-id.js';
export type { RawBodyRequest, WebhookEvent, WebhookHandlerOptions } from './front-ends.js';
export { webhookExpressHandler, webhookFetchHandler } from './front-ends.js';
export type {
  TimestampToleranceOptions,
  WebhookSecrets,
  WebhookVerifier,
} from './verifiers.js';
export { defaultTimestampTolerance, verifiers } from './verifiers.js';
export type { DeliveryOutcome, WebhookGuardOptions, WebhookReply } from './webhook-guard.js';
export { defaultWebhookGuardOptions, WebhookGuard } from './webhook-guard.js';
