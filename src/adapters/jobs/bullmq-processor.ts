import type { Attributes } from '@opentelemetry/api';
import {
  type IdempotentExecutor,
  InvalidOptionError,
  type RunContext,
  type RunOptions,
} from '../../index.js';
import {
  assertExecutor,
  assertOptionsObject,
  assertScopeOption,
  functionOption,
} from '../edge/index.js';
import { CancellableContext, runGuarded } from './guarded-run.js';
import { type JobRunSettings, resolveRunSettings } from './options.js';
import { assertKeyPart, jobKey, unrecoverableKey } from './unrecoverable.js';

/**
 * The parts of a BullMQ `Job` the processor reads; every BullMQ `Job` has them. Declared here
 * rather than imported, so this module's types load without `bullmq` installed.
 */
export interface ProcessedJob {
  /** The job id; BullMQ always sets it on the jobs a worker processes. */
  readonly id?: string | undefined;
  /**
   * When the job was created, ms since the epoch. BullMQ writes it once, when the job is added:
   * every attempt, stall and manual retry of the job sees the same value.
   */
  readonly timestamp?: number | undefined;
  /** `<prefix>:<queue name>`, e.g. `bull:orders`. */
  readonly queueQualifiedName: string;
  /** The queue's name (BullMQ sets it): `messaging.destination.name` on the run span. */
  readonly queueName?: string | undefined;
}

/** What the work of a job receives, besides the job. */
export interface JobRunContext extends RunContext {
  /**
   * Aborted when the lease is lost (this execution's result will not be stored) or when BullMQ
   * cancels the job (`worker.cancelJob()`, `worker.cancelAllJobs()`), with that cause as reason.
   * Stop side effects that are not done yet.
   */
  readonly signal: AbortSignal;
  /** BullMQ's lock token of this job, for calls such as `job.moveToDelayed(timestamp, token)`. */
  readonly token: string | undefined;
}

/** The function a BullMQ worker calls, plus the executor key it uses for a job. */
export interface IdempotentProcessor<JobType extends ProcessedJob, ResultType> {
  (job: JobType, token?: string, signal?: AbortSignal): Promise<ResultType>;
  /**
   * The executor key of `job`, for `executor.inspect()` and `executor.forget()` (forget it to
   * have the next run of the job do the work again).
   */
  keyOf(job: JobType): string;
}

/** Options of {@link idempotentProcessor}. */
export interface IdempotentProcessorOptions<JobType extends ProcessedJob> extends JobRunSettings {
  /**
   * Where the job keys are unique; every executor key is `<scope>:<job key>`. Give the same
   * scope to queues whose jobs must share results (a queue renamed, a prefix changed).
   * @defaultValue the job's `queueQualifiedName` (`<prefix>:<queue name>`, e.g. `bull:orders`)
   */
  readonly scope?: string;
  /**
   * The job's key, e.g. a business key from its data (`(job) => job.data.orderId`): jobs enqueued
   * twice under different job ids but with one business key then run the work once. A key that
   * is missing, empty, not a string or not well-formed Unicode fails the job at once, without
   * further attempts (`IDEMPOTENCY_INVALID_KEY`).
   *
   * Without it a job is keyed by its id and its creation time (`<scope>:<id>:<timestamp>`): the
   * same on every attempt, stall and manual retry of the job, but not shared with a later job
   * that reuses its id (BullMQ counts ids from 1 again after `queue.obliterate()` or on a new
   * Redis). Job ids you choose to deduplicate by (`jobId: order.id`) are business keys: pass
   * `(job) => job.id` to key by them alone.
   * @defaultValue the job's id and `timestamp`
   */
  readonly key?: (job: JobType) => string;
  /**
   * A JSON-like value describing the job (its data, say). A job whose key already has a result
   * made with another fingerprint fails with `IDEMPOTENCY_KEY_REUSED` instead of replaying it.
   * @defaultValue none: not checked
   */
  readonly fingerprint?: (job: JobType) => unknown;
}

/**
 * Wraps `work` into a BullMQ processor that runs it at most once per job key across every
 * worker sharing the executor's Redis. A job that already succeeded and runs again (stalled
 * after the work, retried by hand, enqueued twice under one business key) completes with the
 * stored result, without running the work. Errors are not cached by default, so `attempts`
 * really retry. The lease is renewed for as long as the work runs; losing it aborts `ctx.signal`.
 *
 * For in-process processors only (not sandboxed processor files).
 *
 * @example
 * ```ts
 * const worker = new Worker<Order, Receipt>(
 *   'orders',
 *   idempotentProcessor(executor, async (job, ctx) => charge(job.data, ctx.signal), {
 *     key: (job) => job.data.orderId,
 *   }),
 *   { connection },
 * );
 * ```
 */
export function idempotentProcessor<JobType extends ProcessedJob, ResultType>(
  executor: IdempotentExecutor,
  work: (job: JobType, ctx: JobRunContext) => ResultType | PromiseLike<ResultType>,
  options: IdempotentProcessorOptions<JobType> = NO_OPTIONS,
): IdempotentProcessor<JobType, ResultType> {
  assertExecutor(executor);
  if (typeof work !== 'function') throw new InvalidOptionError('work', 'a function', work);
  assertOptionsObject(options);
  if (options.scope !== undefined) assertScopeOption('scope', options.scope);
  const { scope, key: businessKeyOf } = options;
  // No key function: the job's identity (id and creation time) keys it, see identityOf.
  if (businessKeyOf !== undefined && typeof businessKeyOf !== 'function') {
    throw new InvalidOptionError('key', 'a function', businessKeyOf);
  }
  const fingerprintOf = functionOption('fingerprint', options.fingerprint, noFingerprint);
  const settings: RunOptions = resolveRunSettings(options);

  const keyOf = (job: JobType): string => {
    const jobScope = scope ?? job.queueQualifiedName;
    if (scope === undefined) assertKeyPart(jobScope, 'the queue name');
    if (businessKeyOf === undefined) return jobKey(jobScope, identityOf(job));
    const key: unknown = businessKeyOf(job);
    assertKeyPart(key, 'the job key');
    return jobKey(jobScope, [key]);
  };

  // Three declared parameters: BullMQ passes the job's AbortSignal only to a processor whose
  // `length` is at least 3.
  const processor = async (
    job: JobType,
    token?: string,
    signal?: AbortSignal,
  ): Promise<ResultType> =>
    runGuarded(
      executor,
      {
        key: keyOf(job),
        settings,
        fingerprint: fingerprintOf(job),
        cancel: signal,
        attributes: () => jobAttributes(job),
      },
      (ctx, cancel) => new JobContext(ctx, cancel, token),
      (ctx) => work(job, ctx),
    );
  return Object.assign(processor, { keyOf });
}

class JobContext extends CancellableContext implements JobRunContext {
  constructor(
    inner: RunContext,
    cancel: AbortSignal | undefined,
    readonly token: string | undefined,
  ) {
    super(inner, cancel);
  }
}

/**
 * The default key parts of a job: its id and its creation time. The id alone is not enough: BullMQ
 * counts ids from 1 again after `queue.obliterate()` or on a new Redis, and a new job 1 must not
 * complete with the stored result of an old job 1 without its work running. The creation time
 * tells them apart and, unlike `processedOn` or `attemptsMade`, stays the same on every attempt,
 * stall and manual retry of one job, so those still replay.
 */
function identityOf(job: ProcessedJob): [string, string] {
  const { id, timestamp } = job;
  assertKeyPart(id, 'the job id');
  if (typeof timestamp !== 'number' || !Number.isFinite(timestamp)) {
    unrecoverableKey(`Expected the job's timestamp to be a number, got ${typeof timestamp}`);
  }
  return [id, String(timestamp)];
}

/** The run span's attributes, by the messaging semantic conventions. */
function jobAttributes(job: ProcessedJob): Attributes {
  const attributes: Attributes = {
    'messaging.system': 'bullmq',
    'messaging.operation.type': 'process',
    'messaging.operation.name': 'process',
  };
  if (job.id !== undefined) attributes['messaging.message.id'] = job.id;
  if (job.queueName !== undefined) attributes['messaging.destination.name'] = job.queueName;
  return attributes;
}

/** No fingerprint: an undefined fingerprint is not checked. */
function noFingerprint(_job: ProcessedJob): unknown {
  return undefined;
}

const NO_OPTIONS = Object.freeze({});
