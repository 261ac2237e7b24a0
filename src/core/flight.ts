import type { Span } from '@opentelemetry/api';
import { monotonicNow } from '../clock.js';
import {
  AbortedError,
  InProgressError,
  KeyReusedError,
  StoreUnavailableError,
  WaitTimeoutError,
} from './errors.js';
import type { Settled } from './outcome.js';
import { sameFingerprint } from './record-codec.js';
import type { RunOutcome } from './telemetry.js';

/**
 * claiming: asking the store; executing: fn runs in this process; waiting: another process runs it.
 */
export type Phase = 'claiming' | 'executing' | 'waiting';

/** One caller attached to a flight. */
export interface Caller {
  readonly fingerprint: Uint8Array | null;
  readonly wait: boolean;
  readonly waitTimeoutMs: number;
  readonly signal: AbortSignal | undefined;
  /** The caller that started the flight: its own execution is never "another" one. */
  readonly leader: boolean;
}

/**
 * Everything this process is doing for one key: at most one claim/execute/wait sequence,
 * shared by every concurrent caller with that key (same-process duplicates cost no Redis trip).
 * Each caller keeps its own wait bound, signal and `wait: false`; when the last caller stops
 * waiting, the flight is abandoned (unless fn is running here, which always finishes).
 */
export class Flight {
  phase: Phase = 'claiming';
  /** The span of the call that started the flight, when it records; fn's spans are its children. */
  span: Span | undefined = undefined;
  /** How the flight got (or is getting) its answer, for the leader's span and the metrics. */
  resolution: RunOutcome | undefined = undefined;
  /** The callers attached: most flights have one, kept without a Set. */
  private first: Attachment | undefined = undefined;
  private others: Set<Attachment> | undefined = undefined;
  /** Made only when a wait needs the signal: most flights never wait. */
  private abandonController: AbortController | undefined;
  private abandonedFlag = false;
  private ended = false;

  constructor(
    readonly key: string,
    /** The store's key for `key` (namespace and escaping applied), made once per flight. */
    readonly recordKey: string,
    /** The fingerprint of the caller that started the flight. */
    readonly fingerprint: Uint8Array | null,
    private readonly onEnd: (flight: Flight) => void,
  ) {}

  /** Aborted when no caller waits any more. */
  get abandonSignal(): AbortSignal {
    if (this.abandonController === undefined) {
      this.abandonController = new AbortController();
      if (this.abandonedFlag) this.abandonController.abort();
    }
    return this.abandonController.signal;
  }

  get abandoned(): boolean {
    return this.abandonedFlag;
  }

  /** Attaches a caller; the promise settles with the flight or with the caller's own bound. */
  follow<T>(caller: Caller): Promise<T> {
    if (caller.fingerprint !== null && !sameFingerprint(caller.fingerprint, this.fingerprint)) {
      return Promise.reject(new KeyReusedError(this.key));
    }
    if (!caller.wait && this.phase !== 'claiming') {
      return Promise.reject(new InProgressError(this.key));
    }
    return new Promise<T>((resolve, reject) => {
      const attachment = new Attachment(this, caller, resolve as (value: unknown) => void, reject);
      if (this.first === undefined && this.others === undefined) this.first = attachment;
      else {
        this.others ??= new Set();
        this.others.add(attachment);
      }
      attachment.onPhase(this.phase);
    });
  }

  setPhase(phase: Phase): void {
    this.phase = phase;
    if (this.others === undefined) this.first?.onPhase(phase);
    else for (const attachment of this.attachments()) attachment.onPhase(phase);
  }

  /** Delivers the end of the flight to every caller still attached. */
  settle(settled: Settled): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd(this);
    const { first, others } = this;
    this.first = undefined;
    this.others = undefined;
    first?.deliver(settled);
    if (others !== undefined) for (const attachment of others) attachment.deliver(settled);
  }

  /** Rejects every attached caller with `error` and stops waiting (used by `close()`). */
  shutDown(error: unknown): void {
    for (const attachment of this.attachments()) attachment.fail(error);
  }

  /** @internal */
  detach(attachment: Attachment): void {
    if (this.first === attachment) this.first = undefined;
    else this.others?.delete(attachment);
    const attached = this.first !== undefined || (this.others?.size ?? 0) > 0;
    if (attached || this.phase === 'executing' || this.ended) return;
    // Nobody waits: stop the wait loop now, and let a later call start afresh.
    this.ended = true;
    this.onEnd(this);
    this.abandonedFlag = true;
    this.abandonController?.abort();
  }

  /** A copy of the attached callers: an attachment may detach itself while they are visited. */
  private attachments(): Attachment[] {
    const list: Attachment[] = this.first === undefined ? [] : [this.first];
    if (this.others !== undefined) list.push(...this.others);
    return list;
  }
}

class Attachment {
  private readonly startedAt = monotonicNow();
  private timer: NodeJS.Timeout | undefined;
  private readonly onAbort: (() => void) | undefined;
  private done = false;

  constructor(
    private readonly flight: Flight,
    private readonly caller: Caller,
    private readonly resolve: (value: unknown) => void,
    private readonly reject: (error: unknown) => void,
  ) {
    const { signal } = caller;
    if (signal !== undefined) {
      this.onAbort = () => this.fail(new AbortedError(flight.key, signal.reason));
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  onPhase(phase: Phase): void {
    if (phase === 'claiming') return;
    if (phase === 'executing' && this.caller.leader) {
      // fn now runs for this very caller: it is not waiting for another execution.
      clearTimeout(this.timer);
      this.timer = undefined;
      return;
    }
    // Waiting on another process, or a duplicate that joined an execution of this process:
    // either way someone else's fn runs, and this caller keeps its own bound.
    if (!this.caller.wait) this.fail(new InProgressError(this.flight.key));
    else if (this.timer === undefined) {
      const remaining = this.startedAt + this.caller.waitTimeoutMs - monotonicNow();
      if (remaining <= 0) this.timeOut();
      else this.timer = setTimeout(() => this.timeOut(), remaining);
    }
  }

  deliver(settled: Settled): void {
    if (settled.kind === 'failure') {
      this.fail(settled.error, false);
    } else if (settled.kind === 'abandoned') {
      this.fail(
        new StoreUnavailableError('The wait ended without an outcome', this.flight.key),
        false,
      );
    } else if (
      this.caller.fingerprint !== null &&
      !sameFingerprint(this.caller.fingerprint, settled.fingerprint)
    ) {
      this.fail(new KeyReusedError(this.flight.key), false);
    } else if (this.finish(false)) {
      if (settled.outcome.ok) this.resolve(settled.outcome.value);
      else this.reject(settled.outcome.error);
    }
  }

  fail(error: unknown, detach = true): void {
    if (this.finish(detach)) this.reject(error);
  }

  private timeOut(): void {
    this.fail(new WaitTimeoutError(this.flight.key, Math.round(monotonicNow() - this.startedAt)));
  }

  private finish(detach: boolean): boolean {
    if (this.done) return false;
    this.done = true;
    clearTimeout(this.timer);
    if (this.onAbort !== undefined) this.caller.signal?.removeEventListener('abort', this.onAbort);
    if (detach) this.flight.detach(this);
    return true;
  }
}
