import {
  ErrorCode,
  type IdempotencyError,
  type IdempotentExecutor,
  InvalidOptionError,
  isIdempotencyError,
} from '../../index.js';
import {
  answerForCode,
  assertExecutor,
  assertId,
  assertOptionsObject,
  assertScopeOption,
  type HttpAnswer,
  integerOption,
  problemAnswer,
  scopedKey,
} from '../edge/index.js';
import { type Delivery, lowerCaseLookups } from './delivery.js';
import type { EventIdExtractor } from './event-id.js';
import type { WebhookVerifier } from './verifiers.js';

/** Options of {@link WebhookGuard}. */
export interface WebhookGuardOptions {
  /**
   * Who sends these events (`'stripe'`, `'github'`, ...): part of the executor key, so ids of
   * two senders never meet. A non-empty, well-formed string.
   */
  readonly source: string;
  /**
   * Checks that a delivery comes from its sender, in {@link WebhookGuard.reply} before the event
   * id is claimed or replayed: one of `verifiers` (Standard Webhooks, Stripe, GitHub, Shopify)
   * or your own `(delivery) => boolean | Promise<boolean>`. A delivery it does not accept gets
   * 401 and never reaches the store. `false` turns the check off: only when something in front
   * (a gateway) has verified every delivery, or when you call only `process()`.
   */
  readonly verify: WebhookVerifier | false;
  /**
   * What a redelivery gets while the first delivery is still being handled: `'wait'` for its
   * outcome (bounded by `waitTimeoutMs`), or `'reject'` at once with a retryable status.
   * @defaultValue `'wait'`
   */
  readonly whileRunning?: 'wait' | 'reject';
  /**
   * How long a redelivery waits for the running handler, ms; past it, a retryable status.
   * Keep it below the sender's own timeout (Stripe, GitHub: 10 s).
   * @defaultValue `8_000`
   */
  readonly waitTimeoutMs?: number;
  /**
   * The `Retry-After` (seconds) sent with a retryable status.
   * @defaultValue `5`
   */
  readonly retryAfterSeconds?: number;
  /**
   * How long a handled event is remembered, ms. A redelivery after that runs the handler again:
   * keep it longer than the sender retries (Stripe: 3 days; GitHub redeliveries are manual).
   * @defaultValue the executor's `ttlMs`
   */
  readonly ttlMs?: number;
}

/** The defaults of {@link WebhookGuardOptions}. */
export const defaultWebhookGuardOptions = Object.freeze({
  whileRunning: 'wait' as const,
  waitTimeoutMs: 8_000,
  retryAfterSeconds: 5,
});

/** How one delivery ended. */
export type DeliveryOutcome<Result> =
  | { readonly status: 'processed'; readonly id: string; readonly result: Result }
  | { readonly status: 'duplicate'; readonly id: string; readonly result: Result }
  /**
   * The handler ran and succeeded, but its result was over the executor's `maxRecordBytes`:
   * only the fact that it ran was stored, so the duplicate is acknowledged without the result.
   */
  | { readonly status: 'duplicate'; readonly id: string; readonly resultStored: false };

/** What an HTTP front end answers for a delivery. */
export interface WebhookReply {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/**
 * One processing per delivered event id: a handler that succeeded is not run again for a
 * redelivery (the duplicate is acknowledged with the stored outcome); a handler that failed is
 * not remembered, so the sender's redelivery runs it again.
 */
export class WebhookGuard {
  private readonly executor: IdempotentExecutor;
  private readonly source: string;
  private readonly verify: WebhookVerifier | false;
  private readonly wait: boolean;
  private readonly waitTimeoutMs: number;
  private readonly retryAfterSeconds: number;
  private readonly ttlMs: number | undefined;

  constructor(executor: IdempotentExecutor, options: WebhookGuardOptions) {
    assertExecutor(executor);
    assertOptionsObject(options, 'an object with a `source` and `verify`');
    assertScopeOption('source', options.source);
    if (options.verify !== false && typeof options.verify !== 'function') {
      throw new InvalidOptionError(
        'verify',
        'a verifier (one of `verifiers`, or a function), or false',
        options.verify,
      );
    }
    const whileRunning = options.whileRunning ?? defaultWebhookGuardOptions.whileRunning;
    if (whileRunning !== 'wait' && whileRunning !== 'reject') {
      throw new InvalidOptionError('whileRunning', "'wait' or 'reject'", whileRunning);
    }
    this.executor = executor;
    this.source = options.source;
    this.verify = options.verify;
    this.wait = whileRunning === 'wait';
    this.waitTimeoutMs = integerOption(
      'waitTimeoutMs',
      options.waitTimeoutMs,
      defaultWebhookGuardOptions.waitTimeoutMs,
    );
    this.retryAfterSeconds = integerOption(
      'retryAfterSeconds',
      options.retryAfterSeconds,
      defaultWebhookGuardOptions.retryAfterSeconds,
    );
    this.ttlMs = options.ttlMs === undefined ? undefined : integerOption('ttlMs', options.ttlMs, 1);
  }

  /**
   * Runs `handler` unless the event `id` was already handled (or is being handled) and resolves
   * with what happened. It does not verify anything: call it only for a verified delivery.
   * Rejects with the handler's own error (nothing remembered), with `IDEMPOTENCY_INVALID_KEY`
   * for an id that is not a non-empty, well-formed string, or with the executor's
   * `IDEMPOTENCY_IN_PROGRESS` / `IDEMPOTENCY_WAIT_TIMEOUT` while another delivery of the same
   * event is running.
   */
  async process<Result>(
    id: string,
    handler: () => Result | PromiseLike<Result>,
    signal?: AbortSignal,
  ): Promise<DeliveryOutcome<Result>> {
    const key = this.executorKeyOf(id);
    let ranHere = false;
    let produced: { readonly result: Result } | undefined;
    try {
      const result = await this.executor.run(
        key,
        async () => {
          ranHere = true;
          const value = await handler();
          produced = { result: value };
          return value;
        },
        {
          wait: this.wait,
          waitTimeoutMs: this.waitTimeoutMs,
          shouldCacheError: () => false,
          // The CloudEvents semantic conventions name an event by its id and source.
          attributes: () => ({
            'cloudevents.event_id': id,
            'cloudevents.event_source': this.source,
          }),
          ...(this.ttlMs === undefined ? {} : { ttlMs: this.ttlMs }),
          ...(signal === undefined ? {} : { signal }),
        },
      );
      return ranHere ? { status: 'processed', id, result } : { status: 'duplicate', id, result };
    } catch (error) {
      // The handler succeeded (here or in an earlier delivery) but its result was too large to
      // store: the event is handled, so it is acknowledged, never run again. The key check keeps
      // the handler's own errors (from an executor it uses) from passing for this.
      if (isOutcomeNotStored(error) && error.key === key) {
        return produced !== undefined
          ? { status: 'processed', id, result: produced.result }
          : { status: 'duplicate', id, resultStored: false };
      }
      throw error;
    }
  }

  /**
   * The HTTP answer for one delivery, for any framework. The delivery is verified first: 401
   * problem+json, and nothing read from or written to the store, unless `verify` accepts it.
   * Then 200 with `{ status, id, result }` when handled (now or before; a duplicate whose result
   * was too large to store has `resultStored: false` and no result); 400 problem+json without a
   * valid event id; 409 + `Retry-After` while another delivery of the event runs; 500 when the
   * handler failed (the sender retries and the redelivery runs the handler again); 503 +
   * `Retry-After` when the store is down. Never rejects.
   */
  async reply<Result>(
    delivery: Delivery,
    eventId: EventIdExtractor,
    handler: (event: { id: string; body: Uint8Array }) => Result | PromiseLike<Result>,
  ): Promise<WebhookReply> {
    const request = lowerCaseLookups(delivery);
    if (this.verify !== false) {
      let verified: unknown;
      try {
        verified = await this.verify(request);
      } catch {
        verified = false;
      }
      if (verified !== true) {
        return toReply(
          problemAnswer(
            'webhooks',
            401,
            'invalid-signature',
            'The delivery does not carry a valid signature of its sender',
            ['www-authenticate', 'Signature realm="webhooks"'],
          ),
        );
      }
    }
    let id: string | undefined;
    try {
      id = eventId(request);
    } catch {
      id = undefined;
    }
    if (typeof id !== 'string' || id.length === 0) {
      return toReply(
        problemAnswer('webhooks', 400, 'missing-event-id', 'The delivery carries no event id'),
      );
    }
    const eventIdOfDelivery = id;
    try {
      const outcome = await this.process(eventIdOfDelivery, () =>
        handler({ id: eventIdOfDelivery, body: request.body }),
      );
      return { status: 200, headers: { ...JSON_TYPE }, body: JSON.stringify(outcome) };
    } catch (error) {
      return toReply(this.problemOf(error));
    }
  }

  /**
   * The executor key of an event id, for `executor.inspect()` and `executor.forget()`.
   * @throws InvalidKeyError unless `id` is a non-empty, well-formed string.
   */
  executorKeyOf(id: string): string {
    assertId(id, 'the webhook event id');
    return scopedKey('webhook', [this.source, id]);
  }

  private problemOf(error: unknown): HttpAnswer {
    if (!isIdempotencyError(error)) {
      return problemAnswer(
        'webhooks',
        500,
        'handler-failed',
        'The handler failed; redeliver to run it again',
      );
    }
    const answer = answerForCode(error.code);
    const retry: (readonly [string, string])[] = answer.retry
      ? [['retry-after', String(this.retryAfterSeconds)]]
      : [];
    return problemAnswer('webhooks', answer.status, answer.type, detailOf(error), ...retry);
  }
}

const JSON_TYPE = Object.freeze({ 'content-type': 'application/json' });

function detailOf(error: IdempotencyError): string {
  switch (error.code) {
    case ErrorCode.IN_PROGRESS:
    case ErrorCode.WAIT_TIMEOUT:
      return 'Another delivery of this event is being handled';
    case ErrorCode.STORE_UNAVAILABLE:
      return 'Deliveries cannot be deduplicated right now';
    case ErrorCode.INVALID_KEY:
      return error.message;
    default:
      return error.code;
  }
}

function isOutcomeNotStored(error: unknown): error is IdempotencyError {
  return isIdempotencyError(error) && error.code === ErrorCode.OUTCOME_NOT_STORED;
}

function toReply(answer: HttpAnswer): WebhookReply {
  return { status: answer.status, headers: Object.fromEntries(answer.headers), body: answer.body };
}
