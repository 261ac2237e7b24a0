import type { KeyListener } from '../store/store.js';
import { renewedLeaseMs } from './record-codec.js';

/** A waiter retries its claim this long after the running lease's expiry, ms (Redis's precision). */
export const EXPIRY_MARGIN_MS = 2;

/**
 * Messages for one waiting flight. An outcome can arrive while the flight is busy claiming or
 * reading, so the latest is kept until asked for. Renewal notices only push the expiry timer
 * out while the flight waits (a read after a claim learns the expiry anyway), so a waiter
 * sends no command for as long as the owner keeps renewing.
 */
export class WaiterInbox implements KeyListener {
  private pending: Uint8Array | 'resync' | undefined;
  private wake: (() => void) | undefined;
  private rearm: ((timeoutMs: number) => void) | undefined;

  onMessage(bytes: Uint8Array): void {
    const leaseMs = renewedLeaseMs(bytes);
    if (leaseMs !== undefined) {
      this.rearm?.(leaseMs + EXPIRY_MARGIN_MS);
      return;
    }
    this.pending = bytes;
    this.wake?.();
  }

  onResync(): void {
    this.pending ??= 'resync';
    this.wake?.();
  }

  /** The next message, `'expired'` after `timeoutMs`, or `'abandoned'` when `signal` aborts. */
  next(
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<Uint8Array | 'resync' | 'expired' | 'abandoned'> {
    const take = () => {
      const message = this.pending;
      this.pending = undefined;
      return message;
    };
    const ready = take();
    if (ready !== undefined) return Promise.resolve(ready);
    if (signal.aborted) return Promise.resolve('abandoned');
    return new Promise((resolve) => {
      let timer = setTimeout(() => finish('expired'), timeoutMs);
      const finish = (result: Uint8Array | 'resync' | 'expired' | 'abandoned') => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.wake = undefined;
        this.rearm = undefined;
        resolve(result);
      };
      const onAbort = () => finish('abandoned');
      signal.addEventListener('abort', onAbort, { once: true });
      this.wake = () => {
        const message = take();
        if (message !== undefined) finish(message);
      };
      this.rearm = (nextTimeoutMs) => {
        clearTimeout(timer);
        timer = setTimeout(() => finish('expired'), nextTimeoutMs);
      };
    });
  }
}
