import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Delivery, deliveryOf } from './delivery.js';
import type { EventIdExtractor } from './event-id.js';
import type { WebhookGuard, WebhookReply } from './webhook-guard.js';

/** What a webhook handler receives: the event id and the raw body, verified by the guard. */
export interface WebhookEvent {
  readonly id: string;
  readonly body: Uint8Array;
}

/** Options of the HTTP front ends. */
export interface WebhookHandlerOptions<Result> {
  /** Reads the event id: one of `eventIds` or your own. */
  readonly eventId: EventIdExtractor;
  /** Handles one event; what it returns is stored and sent back to duplicates. */
  readonly handle: (event: WebhookEvent, request: Delivery) => Result | PromiseLike<Result>;
}

/**
 * A Fetch API handler, `(request: Request) => Promise<Response>`: for Hono, Next.js route
 * handlers, Bun, Deno and any server that speaks Request/Response.
 */
export function webhookFetchHandler<Result>(
  guard: WebhookGuard,
  options: WebhookHandlerOptions<Result>,
): (request: Request) => Promise<Response> {
  return async (request) => {
    const delivery = deliveryOf(request.headers, new Uint8Array(await request.arrayBuffer()));
    const reply = await guard.reply(delivery, options.eventId, (event) =>
      options.handle(event, delivery),
    );
    return new Response(reply.body, { status: reply.status, headers: reply.headers });
  };
}

/** The request shape the Express handler needs; with `express.raw()`, `body` is a Buffer. */
export interface RawBodyRequest extends IncomingMessage {
  body?: unknown;
}

/**
 * An Express (or plain `node:http`) handler. Mount it behind `express.raw({ type: '*\/*' })`
 * so `req.body` holds the raw bytes; without a body parser it reads the stream itself.
 */
export function webhookExpressHandler<Result>(
  guard: WebhookGuard,
  options: WebhookHandlerOptions<Result>,
): (req: RawBodyRequest, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const body = Buffer.isBuffer(req.body) ? req.body : await readBody(req);
    const delivery = deliveryOf(req.headers, body);
    send(
      res,
      await guard.reply(delivery, options.eventId, (event) => options.handle(event, delivery)),
    );
  };
}

function send(res: ServerResponse, reply: WebhookReply): void {
  res.writeHead(reply.status, reply.headers);
  res.end(reply.body);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
