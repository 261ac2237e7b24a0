// Shared by the webhook suites: real node:http servers on free ports in front of the two front
// ends, and a MONITOR-based record of every Redis command that names a test's namespace.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Redis } from 'ioredis';
import {
  type EventIdExtractor,
  WebhookGuard,
  type WebhookGuardOptions,
  type WebhookHandlerOptions,
  webhookExpressHandler,
  webhookFetchHandler,
} from '../../../src/adapters/webhooks/index.js';
import { type ExecutorOptions, IdempotentExecutor } from '../../../src/index.js';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export type FrontEnd = 'fetch' | 'express';

export async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A node:http server in front of a Fetch API handler, as Hono or Bun would run it. */
export function fetchServer(handler: (request: Request) => Promise<Response>): Server {
  return createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const headers = new Headers();
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
    }
    const request = new Request(`http://localhost${req.url}`, {
      method: req.method ?? 'POST',
      headers,
      body: Buffer.concat(chunks),
    });
    const response = await handler(request);
    const out: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      out[name] = value;
    });
    res.writeHead(response.status, out);
    res.end(Buffer.from(await response.arrayBuffer()));
  });
}

/**
 * Starts webhook endpoints (each with its own executor and Redis connections) and stops them
 * all in `stop()`.
 */
export class Endpoints {
  readonly executors: IdempotentExecutor[] = [];
  private readonly servers: Server[] = [];

  constructor(
    private readonly redis: Redis,
    private readonly namespace: () => string,
  ) {}

  executor(options: Partial<ExecutorOptions> = {}): IdempotentExecutor {
    const executor = new IdempotentExecutor({
      redis: this.redis,
      namespace: this.namespace(),
      ...options,
    });
    this.executors.push(executor);
    return executor;
  }

  /** A guard on a fresh executor, served by `frontEnd` at `<url>/hooks`. */
  async start<Result>(
    frontEnd: FrontEnd,
    guardOptions: WebhookGuardOptions,
    handler: WebhookHandlerOptions<Result> & { eventId: EventIdExtractor },
    executorOptions: Partial<ExecutorOptions> = {},
  ): Promise<{ url: string; guard: WebhookGuard; executor: IdempotentExecutor }> {
    const executor = this.executor(executorOptions);
    const guard = new WebhookGuard(executor, guardOptions);
    let server: Server;
    if (frontEnd === 'fetch') {
      server = fetchServer(webhookFetchHandler(guard, handler));
    } else {
      const app = express();
      app.post('/hooks', express.raw({ type: '*/*' }), webhookExpressHandler(guard, handler));
      server = createServer(app);
    }
    this.servers.push(server);
    return { url: `${await listen(server)}/hooks`, guard, executor };
  }

  async stop(): Promise<void> {
    for (const server of this.servers) server.closeAllConnections();
    await Promise.all(
      this.servers.map((server) => new Promise((resolve) => server.close(resolve))),
    );
    await Promise.all(this.executors.map((executor) => executor.close()));
    this.servers.length = 0;
    this.executors.length = 0;
  }
}

/**
 * Every command Redis executes that names `namespace` (a key, a channel, a script argument),
 * seen through MONITOR on a connection of its own. `settled()` waits until commands sent before
 * it have been seen: MONITOR reports commands in the order Redis executed them, so once a
 * sentinel sent afterwards shows up, everything executed before it has too.
 */
export class StoreTraffic {
  readonly commands: string[][] = [];
  private sentinelsSeen = new Set<string>();

  private constructor(
    private readonly monitor: Redis,
    private readonly redis: Redis,
    private readonly namespace: string,
  ) {
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === 'echo' && args[1]?.startsWith(`${namespace}-sentinel-`)) {
        this.sentinelsSeen.add(args[1]);
      } else if (args.some((arg) => arg.includes(namespace))) {
        this.commands.push(args);
      }
    });
  }

  static async watch(redis: Redis, namespace: string): Promise<StoreTraffic> {
    const traffic = new StoreTraffic(await redis.monitor(), redis, namespace);
    await traffic.settled();
    return traffic;
  }

  async settled(): Promise<void> {
    const sentinel = `${this.namespace}-sentinel-${Math.random().toString(36).slice(2)}`;
    await this.redis.echo(sentinel);
    const deadline = Date.now() + 5_000;
    while (!this.sentinelsSeen.has(sentinel)) {
      if (Date.now() > deadline) throw new Error('MONITOR did not report the sentinel');
      await sleep(5);
    }
  }

  /** The commands seen so far, and forgets them. */
  take(): string[][] {
    return this.commands.splice(0, this.commands.length);
  }

  stop(): void {
    this.monitor.disconnect();
  }
}

/** Keys under `namespace` (SCAN). */
export async function keysOf(redis: Redis, namespace: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  return keys;
}
