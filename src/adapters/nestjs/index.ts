export { IdempotencyInterceptor } from './idempotency-interceptor.js';
export type { IdempotencyModuleAsyncOptions } from './idempotency-module.js';
export { IdempotencyModule } from './idempotency-module.js';
export { Idempotent } from './idempotent.js';
export type {
  IdempotencyModuleFactoryOptions,
  IdempotencyModuleOptions,
  IdempotentOptions,
  WithExecutor,
  WithExecutorOptions,
} from './options.js';
export { IDEMPOTENT_EXECUTOR } from './tokens.js';
