import type { DynamicModule, InjectionToken, ModuleMetadata, Provider } from '@nestjs/common';
import { IdempotencyInterceptor } from './idempotency-interceptor.js';
import {
  checkModuleOptions,
  type IdempotencyModuleFactoryOptions,
  type IdempotencyModuleOptions,
} from './options.js';
import { createSetup, type IdempotencySetup } from './setup.js';
import { IDEMPOTENCY_SETUP, IDEMPOTENT_EXECUTOR } from './tokens.js';

/** Options of `IdempotencyModule.forRootAsync`. */
export interface IdempotencyModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  /**
   * Returns the module options (an `executor`, or executor options such as `redis`, and
   * `defaults`), given the providers named in `inject`.
   */
  // `never[]`: any function of the providers `inject` names is accepted, as Nest's own
  // FactoryProvider accepts it.
  readonly useFactory: (
    ...args: never[]
  ) => IdempotencyModuleFactoryOptions | Promise<IdempotencyModuleFactoryOptions>;
  /** Providers handed to `useFactory`, in order. @defaultValue `[]` */
  readonly inject?: readonly (
    | InjectionToken
    | { readonly token: InjectionToken; readonly optional: boolean }
  )[];
  /** As in `forRoot`. @defaultValue `true` */
  readonly isGlobal?: boolean;
}

/**
 * Provides an `IdempotentExecutor` (`IDEMPOTENT_EXECUTOR`) and the `IdempotencyInterceptor`
 * behind `@Idempotent()`. Import it once, in the root module.
 */
// biome-ignore lint/complexity/noStaticOnlyClass: a Nest dynamic module is a class with static factories
export class IdempotencyModule {
  /**
   * With an executor you made (`{ executor }`; you close it), or the options of one the module
   * makes and closes (`{ redis, namespace, ... }`); `defaults` are the route options of every
   * guarded route. The options are checked here; the executor is made when the application
   * starts.
   * @throws InvalidOptionError naming the offending option.
   */
  static forRoot(options: IdempotencyModuleOptions): DynamicModule {
    checkModuleOptions(options);
    return moduleOf(options.isGlobal, [], {
      provide: IDEMPOTENCY_SETUP,
      useFactory: () => createSetup(options),
    });
  }

  /** As `forRoot`, with options a factory makes from other providers (configuration). */
  static forRootAsync(options: IdempotencyModuleAsyncOptions): DynamicModule {
    return moduleOf(options.isGlobal, options.imports ?? [], {
      provide: IDEMPOTENCY_SETUP,
      useFactory: async (...args: never[]) => createSetup(await options.useFactory(...args)),
      inject: [...(options.inject ?? [])],
    });
  }
}

function moduleOf(
  isGlobal: boolean | undefined,
  imports: NonNullable<ModuleMetadata['imports']>,
  setup: Provider,
): DynamicModule {
  return {
    module: IdempotencyModule,
    global: isGlobal ?? true,
    imports,
    providers: [
      setup,
      {
        provide: IDEMPOTENT_EXECUTOR,
        useFactory: (resolved: IdempotencySetup) => resolved.executor,
        inject: [IDEMPOTENCY_SETUP],
      },
      IdempotencyInterceptor,
    ],
    exports: [IDEMPOTENCY_SETUP, IDEMPOTENT_EXECUTOR, IdempotencyInterceptor],
  };
}
