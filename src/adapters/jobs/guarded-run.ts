import type { Attributes } from '@opentelemetry/api';
import type { IdempotentExecutor, RunContext, RunOptions } from '../../index.js';

/** One guarded run: the executor key, the shared settings and what is particular to this run. */
export interface GuardedRun {
  readonly key: string;
  readonly settings: RunOptions;
  /** The job's or message's own fingerprint; none: not checked. */
  readonly fingerprint: unknown;
  /** The job's or message's cancellation: stops a wait, and is folded into the work's signal. */
  readonly cancel: AbortSignal | undefined;
  /** The run span's attributes (messaging semantic conventions), made only when it records. */
  readonly attributes: () => Attributes;
}

/**
 * Runs `work` through the executor under `run.key`. The work's context is the executor's, with
 * a signal that also follows `run.cancel`; `wrapContext` lets an adapter add its own fields.
 *
 * `run.cancel` ends this call only while it waits for an execution running elsewhere. Once the
 * work runs here, cancelling reaches the work through its signal and the call settles with the
 * work's own outcome, the one the executor stores: a job never fails as cancelled while its
 * result is stored as a success (the executor's `signal` would end the call at once, fn or not).
 */
export async function runGuarded<T, C extends CancellableContext>(
  executor: IdempotentExecutor,
  run: GuardedRun,
  wrapContext: (ctx: RunContext, cancel: AbortSignal | undefined) => C,
  work: (ctx: C) => T | PromiseLike<T>,
): Promise<T> {
  const { cancel } = run;
  let workStarted = false;
  let waitSignal: AbortSignal | undefined = cancel;
  let unlinkWait = noop;
  if (cancel !== undefined && !cancel.aborted) {
    const wait = new AbortController();
    const onCancel = () => {
      if (!workStarted) wait.abort(cancel.reason);
    };
    cancel.addEventListener('abort', onCancel, { once: true });
    unlinkWait = () => cancel.removeEventListener('abort', onCancel);
    waitSignal = wait.signal;
  }
  const options: RunOptions = {
    ...run.settings,
    ...(run.fingerprint === undefined ? {} : { fingerprint: run.fingerprint }),
    ...(waitSignal === undefined ? {} : { signal: waitSignal }),
    attributes: run.attributes,
  };
  try {
    return await executor.run(
      run.key,
      async (ctx) => {
        workStarted = true;
        const context = wrapContext(ctx, cancel);
        try {
          return await work(context);
        } finally {
          context.dispose();
        }
      },
      options,
    );
  } finally {
    unlinkWait();
  }
}

/**
 * A {@link RunContext} whose `signal` aborts when the lease is lost or when the job's or
 * message's own `cancel` signal aborts, whichever comes first, with that signal's reason.
 * The combined signal is only made when the work reads it, like the executor's own.
 */
export class CancellableContext implements RunContext {
  private combined: AbortController | undefined;
  private unlisten: (() => void) | undefined;
  private disposed = false;

  constructor(
    private readonly inner: RunContext,
    private readonly cancel: AbortSignal | undefined,
  ) {}

  get key(): string {
    return this.inner.key;
  }

  get signal(): AbortSignal {
    // After the work settled, a late read must not hook a listener that nothing removes.
    if (this.cancel === undefined || (this.disposed && this.combined === undefined)) {
      return this.inner.signal;
    }
    if (this.combined === undefined) {
      this.combined = new AbortController();
      this.unlisten = follow(this.combined, [this.inner.signal, this.cancel]);
    }
    return this.combined.signal;
  }

  fencingToken(): Promise<number> {
    return this.inner.fencingToken();
  }

  /**
   * Stops listening once the work has settled: `cancel` may be a long-lived signal (a consumer's
   * shutdown signal shared by every message), which must not collect a listener per message.
   */
  dispose(): void {
    this.disposed = true;
    this.unlisten?.();
    this.unlisten = undefined;
  }
}

/** Aborts `controller` with the reason of the first of `signals` to abort; returns the unhook. */
function follow(controller: AbortController, signals: readonly AbortSignal[]): () => void {
  const aborted = signals.find((signal) => signal.aborted);
  if (aborted !== undefined) {
    controller.abort(aborted.reason);
    return noop;
  }
  const listeners = signals.map((signal) => {
    const onAbort = () => {
      unlisten();
      controller.abort(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    return () => signal.removeEventListener('abort', onAbort);
  });
  const unlisten = () => {
    for (const remove of listeners) remove();
  };
  return unlisten;
}

function noop(): void {}
