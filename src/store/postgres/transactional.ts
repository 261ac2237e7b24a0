import type { PoolClient } from 'pg';
import { InvalidOptionError } from '../../core/errors.js';
import type { RunContext } from '../../core/executor.js';
import { leaseScope, type PostgresLease, PostgresStore } from './postgres-store.js';

/**
 * Exactly-once database effects: wraps fn so that it runs inside a transaction on a client of
 * the store's pool, and the completion record is written in that same transaction just before
 * it commits. Either both fn's writes and the record commit, or neither does: a crash or a lost
 * lease before the commit leaves the database as it was, and the next caller runs fn again.
 *
 * ```ts
 * const receipt = await executor.run(`order:${id}`, transactional(store, async (ctx, client) => {
 *   await client.query('INSERT INTO payments (order_id, amount) VALUES ($1, $2)', [id, amount]);
 *   return { paid: amount };
 * }));
 * ```
 *
 * - The transaction is READ COMMITTED; fn must not COMMIT or ROLLBACK it (SAVEPOINTs are fine).
 * - If fn throws, its writes are rolled back, and the error is cached (or not) as usual.
 * - The executor must run on this `store`, and the wrapper must be the fn given to `run()`.
 * - It costs one more connection of the pool per running execution (fn's transaction holds one
 *   while the lease is renewed on another), and one round trip for the fencing token it takes
 *   first (it is how the wrapper finds its lease; `ctx.fencingToken()` in fn returns it free).
 */
export function transactional<T>(
  store: PostgresStore,
  fn: (ctx: RunContext, client: PoolClient) => T | PromiseLike<T>,
): (ctx: RunContext) => Promise<T> {
  if (!(store instanceof PostgresStore)) {
    throw new InvalidOptionError('store', 'the PostgresStore the executor runs on', store);
  }
  if (typeof fn !== 'function') throw new InvalidOptionError('fn', 'a function', fn);
  return async (ctx) => {
    const scope: { lease?: PostgresLease } = {};
    await leaseScope.run(scope, () => ctx.fencingToken());
    const { lease } = scope;
    if (lease === undefined || lease.store !== store) {
      throw new InvalidOptionError(
        'store',
        'the store of the executor whose run() was given transactional(store, fn)',
        store,
      );
    }
    return lease.runInTransaction(async (client) => fn(ctx, client));
  };
}
