import { applyDecorators, SetMetadata, UseInterceptors } from '@nestjs/common';
import { IdempotencyInterceptor } from './idempotency-interceptor.js';
import { checkRouteOptions, type IdempotentOptions } from './options.js';
import { assertNestSendsResponse } from './route-metadata.js';
import { IDEMPOTENT_ROUTE } from './tokens.js';

/**
 * Guards a route (on a method) or the routes of a controller (on the class) with the
 * `Idempotency-Key` semantics of `idempotent-executor/http`: the handler runs at most once per
 * scope + key, duplicates get the stored status, headers and body with `Idempotent-Replayed`,
 * and the same answers as there (400, 409, 422, 500, 503 problem+json). `options` override the
 * module's `defaults` field by field.
 *
 * On a method, the route is guarded whatever its HTTP method unless `options.methods` says
 * otherwise; on a controller, the routes whose method is in `methods` (`POST` and `PATCH` unless
 * set) are. The options are checked here, when the class is defined.
 *
 * @throws InvalidOptionError naming a wrong option; Error on a handler that sends its own
 * response (`@Res()` without `passthrough: true`).
 */
export function Idempotent(options: IdempotentOptions = {}): MethodDecorator & ClassDecorator {
  const decorate = applyDecorators(
    SetMetadata(IDEMPOTENT_ROUTE, checkRouteOptions('options', options)),
    UseInterceptors(IdempotencyInterceptor),
  );
  return ((target: object, method?: string | symbol, descriptor?: PropertyDescriptor) => {
    // Parameter decorators (@Res()) are applied before the method's decorators: their metadata
    // is already there to check.
    if (method !== undefined) assertNestSendsResponse(target.constructor, method);
    decorate(target, method, descriptor);
  }) as MethodDecorator & ClassDecorator;
}
