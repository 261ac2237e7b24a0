export type {
  Decision,
  HttpIdempotencyOptions,
  HttpRequestInfo,
  ProducedResponse,
  StoredResponse,
} from './core.js';
export {
  defaultFingerprint,
  defaultHttpIdempotencyOptions,
  HttpIdempotency,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  REPLAYED_HEADER,
} from './core.js';
export type { ExpressIdempotencyOptions, ExpressRequestLike } from './express.js';
export { idempotencyMiddleware } from './express.js';
export type {
  FastifyIdempotencyOptions,
  FastifyInstanceLike,
  FastifyReplyLike,
  FastifyRequestLike,
} from './fastify.js';
export { idempotencyPlugin } from './fastify.js';
export type { FetchIdempotencyOptions } from './fetch.js';
export { idempotentFetchHandler } from './fetch.js';
