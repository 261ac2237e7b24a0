export type { IdempotencyErrorCode } from './core/errors.js';
export {
  AbortedError,
  CorruptRecordError,
  ErrorCode,
  IdempotencyError,
  InProgressError,
  InvalidKeyError,
  InvalidOptionError,
  isIdempotencyError,
  KeyReusedError,
  LeaseLostError,
  OutcomeNotStoredError,
  ReplayedError,
  SerializationError,
  StoreUnavailableError,
  WaitTimeoutError,
} from './core/errors.js';
export type { Inspection, RunContext } from './core/executor.js';
export { IdempotentExecutor } from './core/executor.js';
export { MAX_KEY_LENGTH } from './core/keys.js';
export type { ExecutorEvent, ExecutorOptions, RunOptions } from './core/options.js';
export { defaultOptions, MIN_LEASE_MS } from './core/options.js';
export type { ErrorClass } from './core/record-codec.js';
export type { MemoryStoreOptions } from './store/memory/memory-store.js';
export { MemoryStore } from './store/memory/memory-store.js';
export type { RedisClient } from './store/redis/client.js';
export type { EntryState, KeyListener, Lease, Store, Subscription } from './store/store.js';
export { isStoreDataError, StoreDataError } from './store/store.js';
export { VERSION } from './version.js';
