import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { UsageError } from './arguments.js';

/** Redis did not answer (refused, unreachable, timed out, rejected the credentials). */
export class ConnectError extends Error {
  override readonly name = 'ConnectError';
}

/** An open connection to one Redis server or to a Redis Cluster. */
export interface Connection {
  readonly client: Redis | Cluster;
  readonly cluster: boolean;
  /** The URL with any password masked, for messages. */
  readonly displayUrl: string;
  /** One connection per master: where SCAN walks (on one server, the server itself). */
  masters(): Redis[];
  close(): void;
}

export interface ConnectOptions {
  readonly url: string;
  /** Connect as a cluster client without asking the server first. */
  readonly cluster: boolean;
  /** Bound on connecting and on each command, ms. */
  readonly timeoutMs: number;
}

/**
 * Connects, bounded by `timeoutMs`, without retries: a command-line tool should say at once that
 * Redis is down, not queue commands and retry for minutes as ioredis's defaults would. A server
 * reporting `cluster_enabled:1` is reconnected to as a cluster.
 * @throws UsageError for a malformed URL, ConnectError when Redis does not answer.
 */
export async function connect(options: ConnectOptions): Promise<Connection> {
  const url = parseRedisUrl(options.url);
  const displayUrl = maskPassword(url);
  if (options.cluster) return connectCluster(url, displayUrl, options.timeoutMs);
  const single = new Redis(url.toString(), {
    ...boundedOptions(options.timeoutMs),
    retryStrategy: () => null,
    enableOfflineQueue: true,
  });
  await open(single, displayUrl, options.timeoutMs);
  let clusterEnabled: boolean;
  try {
    clusterEnabled = /^cluster_enabled:1\s*$/m.test(await single.info('cluster'));
  } catch (err) {
    single.disconnect();
    throw new ConnectError(`Redis at ${displayUrl} did not answer INFO: ${messageOf(err)}`);
  }
  if (clusterEnabled) {
    single.disconnect();
    return connectCluster(url, displayUrl, options.timeoutMs);
  }
  return {
    client: single,
    cluster: false,
    displayUrl,
    masters: () => [single],
    close: () => single.disconnect(),
  };
}

/** Options of every connection: nothing waits on Redis longer than `timeoutMs`. */
function boundedOptions(timeoutMs: number) {
  return {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
  } as const satisfies RedisOptions;
}

async function connectCluster(
  url: URL,
  displayUrl: string,
  timeoutMs: number,
): Promise<Connection> {
  const username = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  const cluster = new Cluster([{ host: url.hostname, port: Number(url.port || 6379) }], {
    lazyConnect: true,
    clusterRetryStrategy: () => null,
    slotsRefreshTimeout: timeoutMs,
    enableOfflineQueue: true,
    redisOptions: {
      ...boundedOptions(timeoutMs),
      ...(username === '' ? {} : { username }),
      ...(password === '' ? {} : { password }),
      ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
    },
  });
  await open(cluster, displayUrl, timeoutMs);
  return {
    client: cluster,
    cluster: true,
    displayUrl,
    masters: () => cluster.nodes('master'),
    close: () => cluster.disconnect(),
  };
}

/** Opens `client`, or fails with the reason Redis gave (ioredis only says "Connection is closed"). */
async function open(client: Redis | Cluster, displayUrl: string, timeoutMs: number) {
  let lastError: unknown;
  client.on('error', (err: unknown) => {
    lastError = err;
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${timeoutMs} ms (see --timeout)`)),
      timeoutMs,
    );
  });
  try {
    await Promise.race([client.connect(), timedOut]);
  } catch (err) {
    client.disconnect();
    throw new ConnectError(
      `Cannot connect to Redis at ${displayUrl}: ${messageOf(lastError ?? err)}`,
    );
  } finally {
    clearTimeout(timer);
  }
}

/** @throws UsageError unless `text` is a redis:// or rediss:// URL. */
export function parseRedisUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`Expected --redis to be a URL such as redis://host:6379, got "${text}"`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new UsageError(
      `Expected --redis to be a redis:// or rediss:// URL, got the protocol "${url.protocol}"`,
    );
  }
  if (url.hostname === '') throw new UsageError(`Expected --redis to name a host, got "${text}"`);
  return url;
}

function maskPassword(url: URL): string {
  if (url.password === '') return url.toString();
  const masked = new URL(url.toString());
  masked.password = '***';
  return masked.toString();
}

export function messageOf(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return messageOf(err.errors[0]);
  return err instanceof Error ? err.message || err.name : String(err);
}
