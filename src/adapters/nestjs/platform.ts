import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { type HttpRequestInfo, incomingHeader, pathOf } from '../http/core.js';

/** The parts of an Express or Fastify request the interceptor reads. */
interface PlatformRequest {
  readonly method: string;
  /** Express: the URL as received, before routers cut it; Fastify: the same. */
  readonly originalUrl?: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body?: unknown;
}

/** A header value as Node and the frameworks hold them. */
type HeaderValue = string | number | readonly string[] | undefined;

/** What the interceptor needs of the platform's response object, Express or Fastify alike. */
export interface PlatformResponse {
  /** The Node response the platform writes to (Express: the response itself; Fastify: `raw`). */
  readonly raw: ServerResponse;
  /** Sets a header where the platform keeps its headers (Fastify keeps them on the reply). */
  setHeader(name: string, value: string): void;
  /** The headers set so far, where the platform keeps them. */
  headers(): Iterable<readonly [string, HeaderValue]>;
}

interface FastifyReplyLike {
  readonly raw: ServerResponse;
  header(name: string, value: string): unknown;
  getHeaders(): Record<string, HeaderValue>;
}

/** The request as the HTTP core sees it: method, concrete path, headers in any case, body. */
export function requestInfo(request: unknown): HttpRequestInfo {
  const { method, originalUrl, url, headers, body } = request as PlatformRequest;
  return {
    method,
    path: pathOf(originalUrl ?? url),
    header: incomingHeader(headers),
    body,
  };
}

/**
 * The response object of the platform, Express (a Node `ServerResponse`) or Fastify (a reply
 * around one).
 * @throws TypeError for any other platform: the interceptor cannot capture what it sends.
 */
export function platformResponse(response: unknown): PlatformResponse {
  if (isFastifyReply(response)) {
    return {
      raw: response.raw,
      setHeader: (name, value) => {
        response.header(name, value);
      },
      headers: () => Object.entries(response.getHeaders()),
    };
  }
  if (isNodeResponse(response)) {
    return {
      raw: response,
      setHeader: (name, value) => {
        response.setHeader(name, value);
      },
      headers: () => Object.entries(response.getHeaders()),
    };
  }
  throw new TypeError(
    'idempotent-executor/nestjs guards routes on the Express and Fastify platforms only',
  );
}

function isNodeResponse(value: unknown): value is ServerResponse {
  const candidate = value as Partial<ServerResponse> | null;
  return (
    typeof candidate?.writeHead === 'function' &&
    typeof candidate.end === 'function' &&
    typeof candidate.getHeaders === 'function'
  );
}

function isFastifyReply(value: unknown): value is FastifyReplyLike {
  const candidate = value as Partial<FastifyReplyLike> | null;
  return (
    isNodeResponse(candidate?.raw) &&
    typeof candidate?.header === 'function' &&
    typeof candidate.getHeaders === 'function'
  );
}
