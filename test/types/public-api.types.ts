// Compile-time checks of the public API (checked by `tsc -p .` in `npm run lint`; never run).
import { expectTypeOf } from 'expect-type';
import {
  ErrorCode,
  type ExecutorEvent,
  type ExecutorOptions,
  type IdempotencyError,
  type IdempotencyErrorCode,
  type IdempotentExecutor,
  type Inspection,
  type KeyReusedError,
  MemoryStore,
  type RunContext,
  type RunOptions,
} from '../../src/index.js';

declare const executor: IdempotentExecutor;

// run() returns what fn returns, awaited, whether fn is async or not.
expectTypeOf(executor.run('k', async () => 42)).toEqualTypeOf<Promise<number>>();
expectTypeOf(executor.run('k', () => 'v')).toEqualTypeOf<Promise<string>>();
expectTypeOf(executor.run('k', async (ctx) => ctx)).toEqualTypeOf<Promise<RunContext>>();

// The context gives the key, the lease signal and a lazy fencing token.
expectTypeOf<RunContext['key']>().toEqualTypeOf<string>();
expectTypeOf<RunContext['signal']>().toEqualTypeOf<AbortSignal>();
expectTypeOf<RunContext['fencingToken']>().returns.toEqualTypeOf<Promise<number>>();

// Codes are a closed literal union, and each error class narrows its own.
expectTypeOf(ErrorCode.KEY_REUSED).toEqualTypeOf<'IDEMPOTENCY_KEY_REUSED'>();
expectTypeOf<KeyReusedError['code']>().toEqualTypeOf<'IDEMPOTENCY_KEY_REUSED'>();
expectTypeOf<IdempotencyError['code']>().toEqualTypeOf<IdempotencyErrorCode>();

// Options: a store or a Redis client; per-call overrides.
expectTypeOf({ store: new MemoryStore() }).toMatchTypeOf<ExecutorOptions>();
expectTypeOf<{ ttlMs: number; wait: boolean }>().toMatchTypeOf<RunOptions>();
expectTypeOf(executor.inspect('k')).toEqualTypeOf<Promise<Inspection>>();
expectTypeOf(executor.forget('k')).toEqualTypeOf<Promise<boolean>>();
expectTypeOf<ExecutorEvent['type']>().toEqualTypeOf<
  'executed' | 'replayed' | 'joined' | 'lease-lost' | 'store-failed' | 'under-replicated'
>();

// @ts-expect-error: the key must be a string
void executor.run(42, async () => 1);
// @ts-expect-error: wait is a boolean
void executor.run('k', async () => 1, { wait: 'no' });
