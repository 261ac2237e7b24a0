import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Observable, Subscriber } from 'rxjs';
import type { HttpIdempotency, ProducedResponse } from '../http/core.js';
import type { PlatformResponse } from './platform.js';

type HeaderValue = string | number | readonly string[] | undefined;

const EMPTY_BODY = new Uint8Array(0);

/**
 * One run of a route handler under a claimed key: it runs the rest of Nest's chain (pipes and
 * the handler) and captures the response the platform then writes on the Node response, so
 * the record holds what the client received: the status set by `@HttpCode()` or the method's
 * default, the headers set by `@Header()`, the handler or the platform, and the body as
 * serialised, after every interceptor outside this one. Only the final `end` is held back until
 * the record is stored (or the key freed): a client that retries the moment it has its answer
 * finds the key settled.
 *
 * When the handler fails (it, or a pipe, throws; its Observable errors), what the exception
 * filters send is the framework's answer to an error: sent, never stored, and the key freed.
 */
export class HandlerRun {
  /** The response the platform wrote (or, if it never writes one, what it would have). */
  readonly response: Promise<ProducedResponse>;
  private deliver!: (response: ProducedResponse) => void;
  private delivered = false;
  private readonly chunks: Buffer[] = [];
  private readonly headHeaders: (readonly [string, HeaderValue])[] = [];
  private heldEnd: (() => void) | undefined;
  private released = false;
  private outer: Subscriber<unknown> | undefined;
  private lastValue: unknown;
  private handlerSettled = false;
  private handlerFailed = false;

  constructor(
    private readonly platform: PlatformResponse,
    private readonly http: HttpIdempotency,
    handler: Observable<unknown>,
    subscriber: Subscriber<unknown>,
  ) {
    this.response = new Promise((resolve) => {
      this.deliver = resolve;
    });
    this.outer = subscriber;
    this.captureWrites(platform.raw);
    // Only the end of a response that closes before it was written is of interest here: the
    // platform never wrote the handler's outcome (see `settleUnsent`).
    platform.raw.once('close', () => {
      if (this.handlerSettled) this.settleUnsent();
    });
    handler.subscribe({
      next: (value) => {
        this.lastValue = value;
        this.outer?.next(value);
      },
      error: (error: unknown) => {
        this.handlerSettled = true;
        this.handlerFailed = true;
        if (this.outer !== undefined) this.outer.error(error);
        else this.settleUnsent();
      },
      complete: () => {
        this.handlerSettled = true;
        if (this.outer !== undefined) this.outer.complete();
        else this.settleUnsent();
      },
    });
  }

  /**
   * Nest stopped listening. After the handler settled, that is the end of every request. Before
   * it, Nest gave up on the request: Nest 12 does so when a handler returns an Observable and
   * its client goes away, and then sends nothing. The handler is not stopped (its side effects
   * are under way): its outcome is stored once it settles, so the client's retry replays it
   * rather than running the handler a second time.
   */
  detach(): void {
    this.outer = undefined;
  }

  /** Lets the held `end` through (now, or as soon as the platform calls it). */
  release(): void {
    this.released = true;
    const end = this.heldEnd;
    this.heldEnd = undefined;
    end?.();
  }

  private captureWrites(raw: ServerResponse): void {
    const writeHead = raw.writeHead.bind(raw) as (...args: unknown[]) => ServerResponse;
    const write = raw.write.bind(raw) as (...args: unknown[]) => boolean;
    const end = raw.end.bind(raw) as (...args: unknown[]) => ServerResponse;
    Object.assign(raw, {
      // Fastify hands its headers to writeHead rather than setting them on the response.
      writeHead: (...args: unknown[]) => {
        this.noteHeadHeaders(typeof args[1] === 'string' ? args[2] : args[1]);
        return writeHead(...args);
      },
      write: (chunk: unknown, ...rest: unknown[]) => {
        this.keep(chunk, rest[0]);
        return write(chunk, ...rest);
      },
      end: (chunk?: unknown, ...rest: unknown[]) => {
        if (typeof chunk !== 'function') this.keep(chunk, rest[0]);
        this.heldEnd = () => end(chunk, ...rest);
        this.settle(this.written());
        if (this.released) this.release();
        return raw;
      },
    });
  }

  /** The response as written: status, the kept headers, the body bytes. */
  private written(): ProducedResponse {
    const headers = new Map<string, HeaderValue>();
    for (const [name, value] of Object.entries(this.platform.raw.getHeaders())) {
      headers.set(name.toLowerCase(), value);
    }
    for (const [name, value] of this.headHeaders) headers.set(name.toLowerCase(), value);
    return {
      status: this.platform.raw.statusCode,
      headers: this.http.storedHeaders(headers),
      body: Buffer.concat(this.chunks),
      fromError: this.handlerFailed,
    };
  }

  /**
   * The handler settled and the platform will not write its outcome (Nest gave up on the
   * request, or the connection closed before anything was written): the outcome as the
   * platform would have sent it. A failure, or a value that cannot be stored (a stream), frees
   * the key: the next attempt runs the handler again.
   */
  private settleUnsent(): void {
    if (this.delivered) return;
    if (this.handlerFailed) {
      this.settle({ status: 500, headers: [], body: EMPTY_BODY, fromError: true });
      return;
    }
    const body = serialised(this.lastValue);
    const headers = new Map<string, HeaderValue>();
    for (const [name, value] of this.platform.headers()) headers.set(name.toLowerCase(), value);
    if (body === undefined) {
      this.settle({ status: 500, headers: [], body: EMPTY_BODY, fromError: true });
      return;
    }
    if (body.json && !headers.has('content-type')) {
      headers.set('content-type', 'application/json; charset=utf-8');
    }
    this.settle({
      status: this.platform.raw.statusCode,
      headers: this.http.storedHeaders(headers),
      body: body.bytes,
    });
  }

  private settle(response: ProducedResponse): void {
    if (this.delivered) return;
    this.delivered = true;
    this.deliver(response);
  }

  private noteHeadHeaders(headers: unknown): void {
    if (Array.isArray(headers)) {
      // [[name, value], ...] or the flat [name, value, name, value, ...]
      if (headers.every(Array.isArray)) {
        for (const [name, value] of headers as [string, HeaderValue][]) {
          this.headHeaders.push([String(name), value]);
        }
      } else {
        for (let i = 0; i + 1 < headers.length; i += 2) {
          this.headHeaders.push([String(headers[i]), headers[i + 1] as HeaderValue]);
        }
      }
    } else if (typeof headers === 'object' && headers !== null) {
      for (const [name, value] of Object.entries(headers as OutgoingHttpHeaders)) {
        this.headHeaders.push([name, value]);
      }
    }
  }

  private keep(chunk: unknown, encoding: unknown): void {
    if (this.delivered) return;
    if (typeof chunk === 'string') {
      this.chunks.push(
        Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'),
      );
    } else if (chunk instanceof Uint8Array) {
      this.chunks.push(Buffer.from(chunk));
    }
  }
}

/**
 * A handler's value as Express and Fastify serialise it: nothing, text, bytes or JSON; undefined
 * for what cannot be stored (a stream, a `StreamableFile`).
 */
function serialised(value: unknown): { bytes: Uint8Array; json: boolean } | undefined {
  if (value === undefined || value === null) return { bytes: EMPTY_BODY, json: false };
  if (typeof value === 'string') return { bytes: Buffer.from(value), json: false };
  if (value instanceof Uint8Array) return { bytes: value, json: false };
  if (typeof value === 'object') {
    const candidate = value as {
      pipe?: unknown;
      getStream?: unknown;
      [Symbol.asyncIterator]?: unknown;
    };
    if (
      typeof candidate.pipe === 'function' ||
      typeof candidate.getStream === 'function' ||
      typeof candidate[Symbol.asyncIterator] === 'function'
    ) {
      return undefined;
    }
  }
  try {
    const text = JSON.stringify(value);
    return text === undefined ? undefined : { bytes: Buffer.from(text), json: true };
  } catch {
    return undefined;
  }
}
