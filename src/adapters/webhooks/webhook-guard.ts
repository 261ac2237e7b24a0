import {
  ErrorCode,
  type IdempotentExecutor,
  InvalidKeyError,
  InvalidOptionError,
  isIdempotencyError,
} from '../../index.js';
import type { Delivery, EventIdExtractor } from './event-id.js';

/** Options of {@link WebhookGuard}. */
export interface WebhookGuardOptions {
  /**
   * Who sends these events (`'stripe'`, `'github'`, ...): part of the executor key, so ids of
   * two senders never meet.
   */
  readonly source: string;
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
  | { readonly status: 'duplicate'; readonly id: string; readonly result: Result };

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
  private readonly source: string;
  private readonly wait: boolean;
  private readonly waitTimeoutMs: number;
  private readonly retryAfterSeconds: number;
  private readonly ttlMs: number | undefined;

  constructor(
    private readonly executor: IdempotentExecutor,
    options: WebhookGuardOptions,
  ) {
    if (options === null || typeof options !== 'object') {
      throw new InvalidOptionError('options', 'an object with a `source`', options);
    }
    if (typeof options.source !== 'string' || options.source.length === 0) {
      throw new InvalidOptionError('source', 'a non-empty string', options.source);
    }
    const whileRunning = options.whileRunning ?? defaultWebhookGuardOptions.whileRunning;
    if (whileRunning !== 'wait' && whileRunning !== 'reject') {
      throw new InvalidOptionError('whileRunning', "'wait' or 'reject'", whileRunning);
    }
    this.source = options.source;
    this.wait = whileRunning === 'wait';
    this.waitTimeoutMs = positive(
      'waitTimeoutMs',
      options.waitTimeoutMs ?? defaultWebhookGuardOptions.waitTimeoutMs,
    );
    this.retryAfterSeconds = positive(
      'retryAfterSeconds',
      options.retryAfterSeconds ?? defaultWebhookGuardOptions.retryAfterSeconds,
    );
    this.ttlMs = options.ttlMs === undefined ? undefined : positive('ttlMs', options.ttlMs);
  }

  /**
   * Runs `handler` unless the event `id` was already handled (or is being handled) and resolves
   * with what happened. Rejects with the handler's own error (nothing remembered), or with the
   * executor's `IDEMPOTENCY_IN_PROGRESS` / `IDEMPOTENCY_WAIT_TIMEOUT` while another delivery of
   * the same event is running.
   */
  async process<Result>(
    id: string,
    handler: () => Result | PromiseLike<Result>,
    signal?: AbortSignal,
  ): Promise<DeliveryOutcome<Result>> {
    if (typeof id !== 'string' || id.length === 0) {
      throw new InvalidKeyError('Expected the webhook event id to be a non-empty string');
    }
    let ranHere = false;
    const result = await this.executor.run(
      this.executorKeyOf(id),
      () => {
        ranHere = true;
        return handler();
      },
      {
        wait: this.wait,
        waitTimeoutMs: this.waitTimeoutMs,
        shouldCacheError: () => false,
        ...(this.ttlMs === undefined ? {} : { ttlMs: this.ttlMs }),
        ...(signal === undefined ? {} : { signal }),
      },
    );
    return { status: ranHere ? 'processed' : 'duplicate', id, result };
  }

  /**
   * The HTTP answer for one delivery, for any framework: 200 with `{ status, id, result }`
   * when handled (now or before); 400 problem+json without an event id; 409 + `Retry-After`
   * while another delivery of the event runs; 500 when the handler failed (the sender retries
   * and the redelivery runs the handler again); 503 + `Retry-After` when the store is down.
   */
  async reply<Result>(
    delivery: Delivery,
    eventId: EventIdExtractor,
    handler: (event: { id: string; body: Uint8Array }) => Result | PromiseLike<Result>,
  ): Promise<WebhookReply> {
    const id = eventId(delivery);
    if (typeof id !== 'string' || id.length === 0) {
      return problem(400, 'missing-event-id', 'The delivery carries no event id');
    }
    try {
      const outcome = await this.process(id, () => handler({ id, body: delivery.body }));
      return { status: 200, headers: JSON_TYPE, body: JSON.stringify(outcome) };
    } catch (error) {
      if (!isIdempotencyError(error)) {
        return problem(500, 'handler-failed', 'The handler failed; redeliver to run it again');
      }
      const retry = { 'retry-after': String(this.retryAfterSeconds) };
      switch (error.code) {
        case ErrorCode.IN_PROGRESS:
        case ErrorCode.WAIT_TIMEOUT:
          return problem(
            409,
            'in-progress',
            'Another delivery of this event is being handled',
            retry,
          );
        case ErrorCode.STORE_UNAVAILABLE:
          return problem(
            503,
            'store-unavailable',
            'Deliveries cannot be deduplicated right now',
            retry,
          );
        case ErrorCode.INVALID_KEY:
          return problem(400, 'invalid-event-id', error.message);
        default:
          return problem(500, 'idempotency-error', error.code);
      }
    }
  }

  /** The executor key of an event id, for `executor.inspect()` and `executor.forget()`. */
  executorKeyOf(id: string): string {
    return `webhook:${encodeURIComponent(this.source)}:${id}`;
  }
}

const JSON_TYPE = { 'content-type': 'application/json' };

function problem(
  status: number,
  type: string,
  detail: string,
  headers: Record<string, string> = {},
): WebhookReply {
  return {
    status,
    headers: { 'content-type': 'application/problem+json', ...headers },
    body: JSON.stringify({
      type: `https://idempotent-executor.dev/problems/webhooks/${type}`,
      title: type.replace(/-/g, ' '),
      status,
      detail,
    }),
  };
}

function positive(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidOptionError(name, 'a positive integer', value);
  }
  return value;
}
