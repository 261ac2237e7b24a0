import type { Cluster, Redis, RedisOptions } from 'ioredis';

/**
 * Options of every connection the store opens, so that closing one leaves nothing behind.
 *
 * `disconnectTimeout`: after `disconnect()` ioredis ends the socket and waits up to this long for
 * the server to close its side before destroying it, on a timer that is cleared only by the
 * socket's own `close` event. Closed while reconnecting, a connection's socket is already gone,
 * so the timer runs its full course (2 s by default) after `close()`; and a hung server never
 * closes its side at all. The store never needs the server's acknowledgement: destroy at once.
 *
 * `maxLoadingRetryTime`: while a restarted Redis loads its data, ioredis's ready check asks again
 * on a timer nothing cancels, after the load's estimated remaining time (a second or more by
 * default). Polling often bounds how long that timer outlives a close (and a restarted server is
 * noticed sooner).
 */
export const CLOSABLE_CONNECTION_OPTIONS = {
  disconnectTimeout: 0,
  maxLoadingRetryTime: 100,
} as const satisfies RedisOptions;

/**
 * Closes `connection` now, whatever state it is in, and resolves once nothing of it is left: its
 * socket closed, its reconnection cancelled, every command still queued on it rejected (which
 * clears their timeouts) and the timers ioredis cannot cancel run out. Gives up waiting after
 * `boundMs`.
 *
 * `disconnect()` alone does not do that. It ends the socket gracefully, waiting for the server
 * to close its side: a hung or half-restarted server keeps the socket open. And called while
 * ioredis waits to reconnect (the last socket closed, the next one not yet opened), it cancels
 * the reconnection but leaves the connection in `reconnecting` for good, its offline queue
 * pending until each command's own timeout.
 */
export async function closeConnection(connection: Redis, boundMs: number): Promise<void> {
  if (connection.status === 'end') return;
  // Past the handshake's ready check, a reply saying the server loads its data sets a poll timer.
  const mayPoll = connection.status === 'connect';
  const ended = untilEvent(connection, 'end', boundMs);
  // Ends the socket, and destroys it on the next turn (disconnectTimeout 0): the server's
  // acknowledgement is not waited for.
  connection.disconnect();
  if (connection.status === 'reconnecting') {
    // A connection attempt cancelled in the same tick: ioredis opens its socket on the next tick
    // only if not cancelled by then, and on cancelling ends the connection and rejects its queue.
    connection.connect().catch(noop);
    connection.disconnect();
  }
  await ended;
  await outlastTimers(mayPoll);
}

/**
 * Closes a Redis Cluster client and each node connection it holds, as {@link closeConnection}
 * does for one connection; resolves once they have all ended, no slot-map refresh (which runs on
 * a connection of its own) is still out, and the retries the client had put off have run out.
 */
export async function closeCluster(cluster: Cluster, boundMs: number): Promise<void> {
  const nodes = cluster.nodes();
  cluster.disconnect();
  // The cluster has dropped every node: this joins a refresh still out (its connection is closed
  // before the callback), or else finds no node to ask and calls back at once.
  const refreshed = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, boundMs);
    cluster.refreshSlotsCache(() => {
      clearTimeout(timer);
      resolve();
    });
  });
  await Promise.all([...nodes.map((node) => closeConnection(node, boundMs)), refreshed]);
  // A command that met a redirection, a failover or CLUSTERDOWN waits on a timer of the client's
  // (its `retryDelayOn…` options) that nothing cancels; once it fires, the command is sent again
  // and rejected at once, the cluster being closed. Those timers were all set before this wait.
  const { retryDelayOnMoved, retryDelayOnFailover, retryDelayOnClusterDown, retryDelayOnTryAgain } =
    cluster.options;
  const retryDelaysMs = [
    retryDelayOnMoved,
    retryDelayOnFailover,
    retryDelayOnClusterDown,
    retryDelayOnTryAgain,
  ].filter((delay): delay is number => typeof delay === 'number');
  await sleep(Math.max(CLOSABLE_CONNECTION_OPTIONS.disconnectTimeout, ...retryDelaysMs));
}

/**
 * Waits out the timers a closed connection may hold that nothing can cancel: ioredis's disconnect
 * timer on a socket that had already closed and, if `mayPoll`, a ready-check poll of a loading
 * server. {@link CLOSABLE_CONNECTION_OPTIONS} bounds both, and timers of equal duration fire in
 * the order they were set, so this one fires after them.
 */
function outlastTimers(mayPoll: boolean): Promise<void> {
  const { disconnectTimeout, maxLoadingRetryTime } = CLOSABLE_CONNECTION_OPTIONS;
  return sleep(mayPoll ? maxLoadingRetryTime : disconnectTimeout);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves at `emitter`'s next `event`, or after `boundMs`. */
function untilEvent(emitter: Redis, event: string, boundMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, boundMs);
    emitter.once(event, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function noop(): void {}
