import type { ServerResponse } from 'node:http';
import {
  type CallHandler,
  type ExecutionContext,
  Inject,
  Injectable,
  type NestInterceptor,
  StreamableFile,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Observable, type Subscription } from 'rxjs';
import { HttpIdempotency, REPLAYED_HEADER, type StoredResponse } from '../http/core.js';
import { HandlerRun } from './handler-run.js';
import type { IdempotentOptions } from './options.js';
import { type PlatformResponse, platformResponse, requestInfo } from './platform.js';
import { assertNestSendsResponse } from './route-metadata.js';
import type { IdempotencySetup } from './setup.js';
import { IDEMPOTENCY_SETUP, IDEMPOTENT_ROUTE } from './tokens.js';

/**
 * Every method Nest routes (`RequestMethod`): a route decorated with `@Idempotent()` is guarded
 * whatever its method, unless the decorator names `methods`.
 */
const EVERY_METHOD = Object.freeze([
  'GET',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'HEAD',
  'SEARCH',
  'PROPFIND',
  'PROPPATCH',
  'MKCOL',
  'COPY',
  'MOVE',
  'LOCK',
  'UNLOCK',
]);

/**
 * Requests a guard has taken: the interceptor may be applied twice to one route (on the
 * controller and on the method); the inner one lets the request through, or it would wait for
 * the outer one's run of the same key, which waits for it.
 */
const guardedRequests = new WeakSet<object>();

/**
 * Guards routes with the `Idempotency-Key` semantics of `idempotent-executor/http`. Applied by
 * `@Idempotent()`; it can also be applied to a controller (`@UseInterceptors`) or to the whole
 * application (`APP_INTERCEPTOR`), where it guards the `methods` of the module's `defaults`
 * (`POST` and `PATCH` unless set).
 */
export class IdempotencyInterceptor implements NestInterceptor {
  private readonly routes = new WeakMap<Function, HttpIdempotency>();
  private readonly checkedRoutes = new WeakSet<Function>();

  constructor(
    private readonly setup: IdempotencySetup,
    private readonly reflector: Reflector,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const request = context.switchToHttp().getRequest<object>();
    if (guardedRequests.has(request)) return next.handle();
    const http = this.guardOf(context);
    const info = requestInfo(request);
    if (!http.guards(info.method)) return next.handle();
    this.assertNestSends(context);
    guardedRequests.add(request);
    const platform = platformResponse(context.switchToHttp().getResponse<unknown>());

    return new Observable<unknown>((subscriber) => {
      let run: HandlerRun | undefined;
      let passed: Subscription | undefined;
      http
        .handle(info, () => {
          run = new HandlerRun(platform, http, next.handle(), subscriber);
          return run.response;
        })
        .then(
          (decision) => {
            // This request ran the handler: the platform is sending its response, held at the
            // end until now.
            if (run !== undefined) return run.release();
            if (decision.kind === 'pass') {
              passed = next.handle().subscribe(subscriber);
              return;
            }
            subscriber.next(answer(platform, decision.response, decision.replayed));
            subscriber.complete();
          },
          (error: unknown) => {
            if (run !== undefined) return run.release();
            // `scope` or `fingerprint` threw: Nest's exception filters answer (a 401, say).
            subscriber.error(error);
          },
        )
        // Setting a stored header the platform refuses, say: Nest's filters answer that too.
        .catch((error: unknown) => subscriber.error(error));
      return () => {
        run?.detach();
        passed?.unsubscribe();
      };
    });
  }

  /** The HTTP core of the route: its `@Idempotent()` options over the module's defaults. */
  private guardOf(context: ExecutionContext): HttpIdempotency {
    const handler = context.getHandler();
    let http = this.routes.get(handler);
    if (http === undefined) {
      const controller = context.getClass();
      const onRoute = this.reflector.get<IdempotentOptions | undefined>(IDEMPOTENT_ROUTE, handler);
      const onController = this.reflector.get<IdempotentOptions | undefined>(
        IDEMPOTENT_ROUTE,
        controller,
      );
      const { defaults } = this.setup;
      const options: IdempotentOptions =
        onRoute !== undefined
          ? { ...defaults, ...onController, methods: EVERY_METHOD, ...onRoute }
          : { ...defaults, ...onController };
      http = new HttpIdempotency(this.setup.executor, options);
      this.routes.set(handler, http);
    }
    return http;
  }

  /** @throws Error for a guarded route whose handler sends its own response (`@Res()`). */
  private assertNestSends(context: ExecutionContext): void {
    const handler = context.getHandler();
    if (this.checkedRoutes.has(handler)) return;
    assertNestSendsResponse(context.getClass(), handler.name);
    this.checkedRoutes.add(handler);
  }
}

Injectable()(IdempotencyInterceptor);
// Explicit tokens: the adapter needs no decorator metadata emitted (`emitDecoratorMetadata`).
Inject(IDEMPOTENCY_SETUP)(IdempotencyInterceptor, undefined, 0);
Inject(Reflector)(IdempotencyInterceptor, undefined, 1);

/**
 * What Nest sends for a stored response or a problem: the stored status (pinned, so that the
 * status Nest sets for the route does not replace it), the stored headers, and the body bytes as
 * they are (a `StreamableFile`, which every platform sends untouched).
 */
function answer(platform: PlatformResponse, stored: StoredResponse, replayed: boolean): unknown {
  pinStatus(platform.raw, stored.status);
  for (const [name, value] of stored.headers) platform.setHeader(name, value);
  if (replayed) platform.setHeader(REPLAYED_HEADER, 'true');
  return stored.body.byteLength === 0 ? undefined : new StreamableFile(Buffer.from(stored.body));
}

/**
 * Nest sends a route's answer with the route's status (`@HttpCode()`, or 201 for POST), set on
 * the Node response through `res.status()` (Express) or `reply.code()` (Fastify), and both
 * platforms write the status line from `statusCode`. Pinning it to the stored status is what
 * lets an interceptor answer with another one on every Nest version and platform.
 */
function pinStatus(raw: ServerResponse, status: number): void {
  Object.defineProperty(raw, 'statusCode', {
    configurable: true,
    enumerable: true,
    get: () => status,
    set: () => {},
  });
}
