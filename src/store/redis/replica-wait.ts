import type { Redis } from 'ioredis';
import { closeConnection } from './close-connection.js';
import { replicaMarkerOf } from './key-layout.js';

/** Most WAIT connections kept open to one master; further concurrent waits queue for one. */
const MAX_CONNECTIONS_PER_MASTER = 8;

/**
 * Waits for replicas to acknowledge a record (Redis `WAIT`) without holding up other commands.
 *
 * WAIT blocks the connection it is sent on until enough replicas acknowledge or its timeout
 * passes, and Redis answers nothing else on that connection meanwhile. Sent on the store's
 * shared, auto-pipelined command connection, each completion would hold back every claim, read
 * and renewal queued behind it: by a replication round trip while replicas are healthy, by the
 * whole `replicasTimeoutMs` for each completion while one is down, long enough for unrelated
 * calls to fail as unreachable. So WAIT runs on connections of its own, a few per master.
 *
 * WAIT counts acknowledgements of the last write made *on its own connection*, and the record
 * was written on another one. So each wait first makes a write of its own on the same master:
 * a marker key beside the record (same hash slot), expiring at once. A master's replication
 * stream is one sequence; the marker is written after the record was, so a replica that
 * acknowledged the marker holds the record too.
 */
export class ReplicaWaiter {
  private readonly pools = new Map<string, ConnectionPool>();
  private closed = false;

  /**
   * @param masterOf names the master that serves `key` (one name on a single server).
   * @param open opens a connection to that master, for WAIT only.
   */
  constructor(
    private readonly masterOf: (key: string) => string,
    private readonly open: (master: string) => Redis,
  ) {}

  /**
   * How many replicas acknowledged every write made so far to `key`'s master, waiting at most
   * `timeoutMs` in all (a wait that queued for a connection that long counts none).
   */
  async wait(key: string, replicas: number, timeoutMs: number): Promise<number> {
    if (this.closed) throw new Error('The store is closed');
    const deadline = Date.now() + timeoutMs;
    const master = this.masterOf(key);
    let pool = this.pools.get(master);
    if (pool === undefined) {
      pool = new ConnectionPool(() => this.open(master));
      this.pools.set(master, pool);
    }
    const connection = await pool.acquire();
    try {
      // WAIT 0 would block forever: a wait with no time left counts no acknowledgement.
      const remainingMs = deadline - Date.now();
      if (remainingMs < 1) return 0;
      const replies = await connection
        .pipeline()
        .set(replicaMarkerOf(key), '1', 'PX', 1)
        .wait(replicas, remainingMs)
        .exec();
      const [marked, waited] = replies ?? [];
      if (marked?.[0]) throw marked[0];
      if (waited?.[0]) throw waited[0];
      return Number(waited?.[1] ?? 0);
    } finally {
      pool.release(connection);
    }
  }

  /** Closes every WAIT connection; resolves once they have ended (see closeConnection). */
  async close(boundMs: number): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((pool) => pool.close(boundMs)));
  }
}

/** Connections to one master, each used by one WAIT at a time. */
class ConnectionPool {
  private readonly all = new Set<Redis>();
  private readonly idle: Redis[] = [];
  private readonly queue: { resolve(connection: Redis): void; reject(error: Error): void }[] = [];

  constructor(private readonly open: () => Redis) {}

  acquire(): Promise<Redis> {
    for (let connection = this.idle.pop(); connection !== undefined; connection = this.idle.pop()) {
      if (connection.status !== 'end') return Promise.resolve(connection);
      this.all.delete(connection);
    }
    if (this.all.size < MAX_CONNECTIONS_PER_MASTER) {
      const connection = this.open();
      this.all.add(connection);
      return Promise.resolve(connection);
    }
    return new Promise((resolve, reject) => this.queue.push({ resolve, reject }));
  }

  release(connection: Redis): void {
    const next = this.queue.shift();
    if (next !== undefined) next.resolve(connection);
    else this.idle.push(connection);
  }

  async close(boundMs: number): Promise<void> {
    for (const waiting of this.queue.splice(0)) waiting.reject(new Error('The store is closed'));
    const connections = [...this.all];
    this.all.clear();
    this.idle.length = 0;
    await Promise.all(connections.map((connection) => closeConnection(connection, boundMs)));
  }
}
