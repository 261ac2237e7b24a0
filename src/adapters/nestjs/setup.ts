import { IdempotentExecutor } from '../../index.js';
import {
  checkModuleOptions,
  checkRouteOptions,
  type IdempotencyModuleFactoryOptions,
  type IdempotentOptions,
} from './options.js';

/**
 * The module's executor and route defaults, one provider. When the module made the executor,
 * it closes it once the application has shut down (after Nest has closed the HTTP server, so
 * no request still runs through it).
 */
export class IdempotencySetup {
  constructor(
    readonly executor: IdempotentExecutor,
    readonly defaults: IdempotentOptions,
    private readonly ownsExecutor: boolean,
  ) {}

  /** Nest's lifecycle hook (called by `app.close()`, or on a signal with shutdown hooks). */
  async onApplicationShutdown(): Promise<void> {
    if (this.ownsExecutor) await this.executor.close();
  }
}

/** The setup `options` describe: the given executor, or a new one made from its options. */
export function createSetup(options: IdempotencyModuleFactoryOptions): IdempotencySetup {
  checkModuleOptions(options);
  const {
    executor,
    defaults,
    isGlobal: _isGlobal,
    ...executorOptions
  } = options as IdempotencyModuleFactoryOptions & { readonly isGlobal?: unknown };
  const routeDefaults = checkRouteOptions('defaults', defaults ?? {});
  return executor !== undefined
    ? new IdempotencySetup(executor, routeDefaults, false)
    : new IdempotencySetup(new IdempotentExecutor(executorOptions), routeDefaults, true);
}
