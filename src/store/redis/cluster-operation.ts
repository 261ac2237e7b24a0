import type { Cluster } from 'ioredis';

/** An operation on a Redis Cluster ran out of time (the store counts it as unreachable). */
export class ClusterTimeoutError extends Error {
  override readonly name = 'ClusterTimeoutError';
}

/**
 * Runs one store operation on a Redis Cluster: retried while the cluster answers with a
 * redirection, and bounded as a whole by `timeoutMs`.
 *
 * The bound. A Cluster client can hold a command longer than any per-connection timeout: in its
 * own offline queue while no node is reachable, in its retry queue while a failed master is
 * being replaced, or behind redirections. The caller must still hear back in time, so the bound
 * is kept here, around the whole operation. The command cannot be withdrawn and may still run
 * later, which every operation of the store tolerates: each script compares the lease token,
 * and a late claim only takes a lease that expires on its own.
 *
 * The retries. With auto-pipelining, ioredis retries a pipeline that met MOVED, ASK or TRYAGAIN
 * only when every command in it met the same reply; in a mixed pipeline (during a slot
 * migration, or just after a failover) the redirection reaches the caller instead. A node that
 * answers with a redirection has not run the command, so sending it again is always safe.
 */
export async function clusterOperation<T>(
  cluster: Cluster,
  operation: () => Promise<T>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ClusterTimeoutError(`Redis Cluster ${what} took more than ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([followRedirections(cluster, operation, deadline), expired]);
  } finally {
    clearTimeout(timer);
  }
}

async function followRedirections<T>(
  cluster: Cluster,
  operation: () => Promise<T>,
  deadline: number,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      const redirection = redirectionOf(error);
      const delayMs = attempt === 0 ? 0 : Math.min(10 * 2 ** attempt, 200);
      if (redirection === undefined || Date.now() + delayMs >= deadline) throw error;
      // ioredis learns nothing from a redirection inside a mixed pipeline: refresh its map.
      if (redirection === 'MOVED') cluster.refreshSlotsCache();
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

function redirectionOf(error: unknown): 'MOVED' | 'ASK' | 'TRYAGAIN' | undefined {
  if (!(error instanceof Error)) return undefined;
  const match = /^(MOVED|ASK|TRYAGAIN) /.exec(error.message);
  return match?.[1] as 'MOVED' | 'ASK' | 'TRYAGAIN' | undefined;
}
