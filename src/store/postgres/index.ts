export type { ListenerClientFactory } from './notification-listener.js';
export type { PostgresPool, PostgresStoreOptions } from './postgres-store.js';
export { PostgresStore, postgresStoreDefaults } from './postgres-store.js';
export { schemaSql } from './statements.js';
export { transactional } from './transactional.js';
