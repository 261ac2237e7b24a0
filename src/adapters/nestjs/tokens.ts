/**
 * The module's `IdempotentExecutor`, for services that run their own work through it:
 * `constructor(@Inject(IDEMPOTENT_EXECUTOR) private readonly executor: IdempotentExecutor) {}`.
 * A `Symbol.for` key, so the CommonJS and ESM builds of the package name one provider.
 */
export const IDEMPOTENT_EXECUTOR: unique symbol = Symbol.for('idempotent-executor/nestjs:executor');

/** The module's executor and route defaults (an `IdempotencySetup`). */
export const IDEMPOTENCY_SETUP: unique symbol = Symbol.for('idempotent-executor/nestjs:setup');

/** The metadata key `@Idempotent()` writes on a route handler or a controller. */
export const IDEMPOTENT_ROUTE = 'idempotent-executor/nestjs:route';
