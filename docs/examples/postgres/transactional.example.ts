// PostgreSQL instead of Redis, and exactly-once database effects: fn's INSERT and the completion
// record commit in one transaction, so a duplicate never inserts a second payment.
import assert from 'node:assert/strict';
import { IdempotentExecutor } from 'idempotent-executor';
import { PostgresStore, transactional } from 'idempotent-executor/postgres';
import pg from 'pg';

const pool = new pg.Pool({
  connectionString: process.env.POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test',
});
const schema = `example_${process.pid}`;
const store = new PostgresStore({ pool, schema, table: 'idempotency_records' });
await store.ensureSchema(); // creates the schema, table and index if missing; safe on every start
await pool.query(`CREATE TABLE "${schema}".payments (order_id text PRIMARY KEY, amount int)`);

const executor = new IdempotentExecutor({ store, namespace: 'payments' });

// fn gets a client inside a transaction; the executor's record is written in it before COMMIT.
const pay = (orderId: string, amount: number) =>
  executor.run(
    `pay:${orderId}`,
    transactional(store, async (_ctx, client) => {
      await client.query(`INSERT INTO "${schema}".payments VALUES ($1, $2)`, [orderId, amount]);
      return { orderId, amount, status: 'paid' };
    }),
    { fingerprint: { amount } },
  );

try {
  // Five concurrent duplicates and a late retry: one INSERT, six identical answers.
  const receipts = await Promise.all([1, 2, 3, 4, 5].map(() => pay('o-1', 1200)));
  const retried = await pay('o-1', 1200);
  for (const receipt of [...receipts, retried]) {
    assert.deepEqual(receipt, { orderId: 'o-1', amount: 1200, status: 'paid' });
  }
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".payments`);
  assert.equal(rows[0].n, 1);
  console.log('one payment row, six identical receipts');
} finally {
  await executor.close();
  await store.close(); // its LISTEN connection; the pool is yours
  await pool.query(`DROP SCHEMA "${schema}" CASCADE`);
  await pool.end();
}
