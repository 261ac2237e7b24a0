import { afterEach, beforeEach } from 'node:test';
import type { PostgresStore } from '../../src/store/postgres/index.js';
import { connectPool, dropSchema, schemaOf, storeInNewSchema } from '../postgres/support.js';
import { behaviouralSuite } from './suite.js';

const pool = connectPool();
// Each test gets a schema (and table) of its own, shared by the test's executors as one
// database is shared by processes; made before the suite's own hooks, dropped after them.
let store: PostgresStore;

beforeEach(async () => {
  store = await storeInNewSchema(pool);
});
afterEach(async () => {
  await store.close();
  await dropSchema(pool, schemaOf(store));
});

behaviouralSuite({
  name: 'PostgresStore',
  options: (namespace) => ({ store, namespace }),
  cleanUp: async () => {},
  close: () => pool.end(),
});
