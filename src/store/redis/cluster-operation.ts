import type { Cluster } from 'ioredis';

/** An operation on a Redis Cluster ran out of time (the store counts it as unreachable). */
export class ClusterTimeoutError extends Error {
  override readonly name = 'ClusterTimeoutError';
}

/**
 * Runs one store operation on a Redis Cluster: sent again while the cluster answers with a
 * redirection, and failed once `timeoutMs` has passed.
 *
 * The retries. With auto-pipelining, ioredis follows MOVED, ASK or TRYAGAIN in a pipeline only
 * when every command of the pipeline met the same reply; in a mixed pipeline (during a slot
 * migration, or just after a failover) the redirection reaches the caller instead, and ioredis
 * does not even learn the new slot owner from it. A node that answers with a redirection has
 * not run the command, so sending it again is always safe.
 *
 * The bound. While the cluster client is ready, every command reaches a node connection at
 * once, and that connection's `commandTimeout` (the store's timeout) starts then and keeps
 * running through ioredis's own retries: no timer of ours is needed on that path, which is
 * the hot one. While it is not ready (connecting, or every node lost), ioredis parks commands
 * in an offline queue where no timeout runs; so the operation then gets a timer of its own.
 * A command cannot be withdrawn and may still run later, which every operation of the store
 * tolerates: each script compares the lease token, and a late claim only takes a lease that
 * expires on its own.
 *
 * `closed` is the store's: once it aborts, the operation fails at once and leaves no timer.
 */
export function clusterOperation<T>(
  cluster: Cluster,
  operation: () => Promise<T>,
  timeoutMs: number,
  what: string,
  closed: AbortSignal,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  const followed = followRedirections(cluster, operation, deadline, 0, closed);
  if (cluster.status === 'ready') return followed;
  return new Promise<T>((resolve, reject) => {
    const fail = (error: unknown) => {
      clearTimeout(timer);
      closed.removeEventListener('abort', onClose);
      reject(error);
    };
    const onClose = () => fail(closedError());
    const timer = setTimeout(
      () => fail(new ClusterTimeoutError(`Redis Cluster ${what} took more than ${timeoutMs} ms`)),
      timeoutMs,
    );
    if (closed.aborted) onClose();
    else closed.addEventListener('abort', onClose, { once: true });
    followed.then((value) => {
      clearTimeout(timer);
      closed.removeEventListener('abort', onClose);
      resolve(value);
    }, fail);
  });
}

function followRedirections<T>(
  cluster: Cluster,
  operation: () => Promise<T>,
  deadline: number,
  attempt: number,
  closed: AbortSignal,
): Promise<T> {
  return operation().catch((error: unknown) => {
    const redirection = redirectionOf(error);
    const delayMs = attempt === 0 ? 0 : Math.min(10 * 2 ** attempt, 200);
    if (redirection === undefined || Date.now() + delayMs >= deadline || closed.aborted) {
      throw error;
    }
    if (redirection === 'MOVED') cluster.refreshSlotsCache();
    return delay(delayMs, closed).then(() =>
      followRedirections(cluster, operation, deadline, attempt + 1, closed),
    );
  });
}

/** Resolves after `ms`, or rejects as soon as `closed` aborts (clearing the timer). */
function delay(ms: number, closed: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onClose = () => {
      clearTimeout(timer);
      reject(closedError());
    };
    const timer = setTimeout(() => {
      closed.removeEventListener('abort', onClose);
      resolve();
    }, ms);
    closed.addEventListener('abort', onClose, { once: true });
  });
}

function closedError(): Error {
  return new Error('The store is closed');
}

function redirectionOf(error: unknown): 'MOVED' | 'ASK' | 'TRYAGAIN' | undefined {
  if (!(error instanceof Error)) return undefined;
  const match = /^(MOVED|ASK|TRYAGAIN) /.exec(error.message);
  return match?.[1] as 'MOVED' | 'ASK' | 'TRYAGAIN' | undefined;
}
