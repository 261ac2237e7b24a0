import { type ExecutorOptions, type IdempotentExecutor, InvalidOptionError } from '../../index.js';
import { assertExecutor, assertOptionsObject } from '../edge/index.js';
import { HttpIdempotency, type HttpIdempotencyOptions } from '../http/core.js';

/**
 * Options of a guarded route: those of `idempotent-executor/http`, with the same meaning and
 * defaults, except `methods` on a route decorated with `@Idempotent()` (see there).
 */
export interface IdempotentOptions extends HttpIdempotencyOptions {}

/** What the module needs besides where its executor comes from. */
interface RouteDefaults {
  /**
   * Options of every guarded route; `@Idempotent(options)` overrides them field by field.
   * @defaultValue `{}` (the defaults of `idempotent-executor/http`)
   */
  readonly defaults?: IdempotentOptions;
}

/** An executor made elsewhere: the module uses it and leaves closing it to its owner. */
export interface WithExecutor extends RouteDefaults {
  readonly executor: IdempotentExecutor;
}

/**
 * The options of an executor the module makes (`redis` or `store`, `namespace`, ...): it is
 * created when the application starts and closed when it shuts down (`app.close()`).
 */
export interface WithExecutorOptions extends RouteDefaults, ExecutorOptions {
  readonly executor?: undefined;
}

/** What `forRootAsync`'s factory returns: an executor, or the options of one, and the defaults. */
export type IdempotencyModuleFactoryOptions = WithExecutor | WithExecutorOptions;

/** Options of `IdempotencyModule.forRoot`. */
export type IdempotencyModuleOptions = IdempotencyModuleFactoryOptions & {
  /**
   * Whether the module is global, so controllers in every module can use `@Idempotent()` and
   * inject `IDEMPOTENT_EXECUTOR`. When false, import it into each module that does.
   * @defaultValue `true`
   */
  readonly isGlobal?: boolean;
};

/**
 * Stands in for the executor while route options are checked (at decoration time, before any
 * module exists): `HttpIdempotency` checks its options when it is constructed.
 */
const OPTIONS_CHECK_EXECUTOR = {
  run: () => Promise.reject(new Error('not an executor')),
} as unknown as IdempotentExecutor;

/**
 * `options` without its undefined fields (so that spreading it over the defaults keeps them).
 * @throws InvalidOptionError naming the first option that is wrong, as the HTTP adapter does.
 */
export function checkRouteOptions(name: string, options: unknown): IdempotentOptions {
  assertOptionsObject(options, `an object of route options (\`${name}\`)`);
  const defined = Object.fromEntries(
    Object.entries(options).filter(([, value]) => value !== undefined),
  ) as IdempotentOptions;
  new HttpIdempotency(OPTIONS_CHECK_EXECUTOR, defined);
  return Object.freeze(defined);
}

/**
 * Checks the module options without creating anything (that happens when the application
 * starts): `executor` excludes executor options, `defaults` are valid route options.
 * @throws InvalidOptionError naming the offending option.
 */
export function checkModuleOptions(options: unknown): void {
  assertOptionsObject(options);
  const { executor, defaults, isGlobal, ...executorOptions } = options as Record<string, unknown>;
  if (isGlobal !== undefined && typeof isGlobal !== 'boolean') {
    throw new InvalidOptionError('isGlobal', 'a boolean', isGlobal);
  }
  if (defaults !== undefined) checkRouteOptions('defaults', defaults);
  if (executor !== undefined) {
    assertExecutor(executor);
    const extra = Object.keys(executorOptions).find((key) => executorOptions[key] !== undefined);
    if (extra !== undefined) {
      throw new InvalidOptionError(
        extra,
        'left out when `executor` is given (that executor was made with its own options)',
        executorOptions[extra],
      );
    }
  }
}
