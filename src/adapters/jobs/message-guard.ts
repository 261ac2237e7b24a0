import type { IdempotentExecutor, RunContext, RunOptions } from '../../index.js';
import { assertExecutor, assertOptionsObject, assertScopeOption } from '../edge/index.js';
import { CancellableContext, runGuarded } from './guarded-run.js';
import { type JobRunSettings, resolveRunSettings } from './options.js';
import { assertKeyPart, jobKey } from './unrecoverable.js';

/** Options of {@link MessageGuard}. */
export interface MessageGuardOptions extends JobRunSettings {
  /**
   * Where the message ids are unique: the queue, topic or subscription name. Every key is
   * `<scope>:<message id>`, so two queues whose ids overlap never share a result.
   */
  readonly scope: string;
}

/** Options of one {@link MessageGuard.run}. */
export interface MessageRunOptions {
  /**
   * Any JSON-like value describing the message (its body, say). A later message with the same
   * id and another fingerprint fails with `IDEMPOTENCY_KEY_REUSED` instead of replaying.
   * @defaultValue none: not checked
   */
  readonly fingerprint?: unknown;
  /**
   * The message's own cancellation (a consumer shutting down, say). While the run waits for an
   * execution running elsewhere, it ends the wait with `IDEMPOTENCY_ABORTED`. Once the work runs
   * here, it aborts the work's `ctx.signal` instead, and the run settles with what the work then
   * returns or throws, which is also what the executor keeps.
   * @defaultValue none
   */
  readonly signal?: AbortSignal;
}

/**
 * Processes each message id at most once across every consumer sharing the executor's Redis,
 * whatever the broker: a message redelivered after its consumer did the work and died before
 * acknowledging it gets the stored result back, without running the work again, so the new
 * consumer can acknowledge it.
 *
 * Errors are not cached unless `shouldCacheError` says so: a failed message that is requeued
 * (nack, visibility timeout) runs the work again.
 *
 * @example
 * ```ts
 * const guard = new MessageGuard(executor, { scope: 'orders' });
 * await channel.consume('orders', async (msg) => {
 *   if (msg === null) return;
 *   try {
 *     await guard.run(msg.properties.messageId, () => fulfil(JSON.parse(msg.content.toString())));
 *     channel.ack(msg);
 *   } catch (error) {
 *     // Requeue what may succeed later; dead-letter a message without a valid id.
 *     channel.nack(msg, false, !isUnrecoverable(error));
 *   }
 * });
 * ```
 */
export class MessageGuard {
  /** Where the ids are unique; the first part of every key. */
  readonly scope: string;
  private readonly settings: RunOptions;

  constructor(
    private readonly executor: IdempotentExecutor,
    options: MessageGuardOptions,
  ) {
    assertExecutor(executor);
    assertOptionsObject(options);
    assertScopeOption('scope', options.scope);
    this.scope = options.scope;
    this.settings = resolveRunSettings(options);
  }

  /**
   * Runs `work` once for `messageId` and returns its value; a duplicate, concurrent or later, in
   * any process, gets that value (or a cached error) instead of running the work.
   *
   * @throws the work's own error, or an `IdempotencyError`: leave the message unacknowledged or
   * requeue it, so it comes back, unless `isUnrecoverable(error)` says no delivery can succeed
   * (`IDEMPOTENCY_INVALID_KEY`: the id is missing, empty, not a string or not well-formed
   * Unicode; the work did not run). Reject that one without requeueing it (dead-letter it).
   */
  async run<T>(
    messageId: string,
    work: (ctx: RunContext) => T | PromiseLike<T>,
    options: MessageRunOptions = NO_OPTIONS,
  ): Promise<T> {
    assertOptionsObject(options);
    return runGuarded(
      this.executor,
      {
        key: this.keyOf(messageId),
        settings: this.settings,
        fingerprint: options.fingerprint,
        cancel: options.signal,
        attributes: () => ({
          'messaging.operation.type': 'process',
          'messaging.message.id': messageId,
        }),
      },
      (ctx, cancel) => new CancellableContext(ctx, cancel),
      work,
    );
  }

  /**
   * The executor key of `messageId` (`<scope>:<id>`, `%` and `:` escaped in the id), for
   * `executor.inspect()` and `executor.forget()` (forget a message's result to have its next
   * delivery run the work again).
   * @throws what {@link MessageGuard.run} throws for an invalid id.
   */
  keyOf(messageId: string): string {
    assertKeyPart(messageId, 'the message id');
    return jobKey(this.scope, [messageId]);
  }
}

const NO_OPTIONS: MessageRunOptions = Object.freeze({});
