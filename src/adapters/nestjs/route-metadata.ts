// Nest's own metadata about a route's parameters, read to refuse what cannot be guarded. The
// keys and the parameter type numbers are the ones Nest has written since version 5.

const ROUTE_ARGS_METADATA = '__routeArguments__';
const RESPONSE_PASSTHROUGH_METADATA = '__responsePassthrough__';
/** `RouteParamtypes.RESPONSE` (`@Res()`) and `RouteParamtypes.NEXT` (`@Next()`). */
const RESPONSE_PARAM_TYPES = new Set(['1', '2']);

interface MetadataReader {
  getMetadata?(key: unknown, target: object, property?: string | symbol): unknown;
}

/**
 * Whether the handler writes its own response (`@Res()` or `@Next()` without
 * `passthrough: true`): then Nest sends nothing it returns, and the interceptor cannot send a
 * replay through Nest.
 */
function sendsItsOwnResponse(controller: object, method: string | symbol): boolean {
  const reflect = Reflect as MetadataReader;
  if (typeof reflect.getMetadata !== 'function') return false; // no metadata: no @Res() either
  const args = reflect.getMetadata(ROUTE_ARGS_METADATA, controller, method);
  if (typeof args !== 'object' || args === null) return false;
  const takesResponse = Object.keys(args).some((key) =>
    RESPONSE_PARAM_TYPES.has(key.split(':')[0] ?? ''),
  );
  return (
    takesResponse && reflect.getMetadata(RESPONSE_PASSTHROUGH_METADATA, controller, method) !== true
  );
}

/**
 * @throws Error when the route's handler writes its own response: the guard needs Nest to send
 * what the handler returns, so that it can send a stored response in its place.
 */
export function assertNestSendsResponse(controller: Function, method: string | symbol): void {
  if (!sendsItsOwnResponse(controller, method)) return;
  throw new Error(
    `idempotent-executor/nestjs cannot guard ${controller.name}.${String(method)}: its handler ` +
      'sends the response itself (@Res() or @Next()). Use @Res({ passthrough: true }) and ' +
      'return the body, so that Nest sends it and a replay can be sent in its place.',
  );
}
