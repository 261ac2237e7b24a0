export type { Delivery, EventIdExtractor } from './event-id.js';
export { eventIds } from './event-id.js';
export type { RawBodyRequest, WebhookEvent, WebhookHandlerOptions } from './front-ends.js';
export { webhookExpressHandler, webhookFetchHandler } from './front-ends.js';
export type { DeliveryOutcome, WebhookGuardOptions, WebhookReply } from './webhook-guard.js';
export { defaultWebhookGuardOptions, WebhookGuard } from './webhook-guard.js';
