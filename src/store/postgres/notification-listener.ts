import type { Client, Notification } from 'pg';
import type { KeyListener, Subscription } from '../store.js';

/** A fresh, not yet connected client for the LISTEN connection. */
export type ListenerClientFactory = () => Client;

/**
 * The store's one LISTEN connection. A pooled client would lose its LISTENs when it goes back
 * to the pool, so this is a client of its own, opened at the first subscription (a store whose
 * callers never wait opens none). Channels are LISTENed while someone waits on them and
 * UNLISTENed after; commands on one connection run in order, so a LISTEN sent after an
 * UNLISTEN of the same channel wins.
 *
 * When the connection is lost it reconnects (backing off up to a second), LISTENs every channel
 * again, and then calls every listener's `onResync`: whatever was notified while it was away is
 * gone, so waiters re-read their key (as the Redis store does after resubscribing).
 */
export class NotificationListener {
  private readonly channels = new Map<string, Set<KeyListener>>();
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectDelayMs = RECONNECT_MIN_MS;
  /** A connection was lost while channels were LISTENed: the next one resyncs their listeners. */
  private resyncPending = false;
  private closed = false;

  constructor(
    private readonly createClient: ListenerClientFactory,
    private readonly timeoutMs: number,
  ) {}

  /** LISTENs `channel` for `listener`; resolves once the LISTEN is in effect. */
  async subscribe(channel: string, listener: KeyListener): Promise<Subscription> {
    if (this.closed) throw new Error('The store is closed');
    let listeners = this.channels.get(channel);
    const first = listeners === undefined;
    if (listeners === undefined) {
      listeners = new Set();
      this.channels.set(channel, listeners);
    }
    listeners.add(listener);
    const owner = listeners;
    let active = true;
    const unsubscribe = () => {
      if (!active) return;
      active = false;
      owner.delete(listener);
      if (owner.size > 0 || this.channels.get(channel) !== owner) return;
      this.channels.delete(channel);
      this.client?.query(`UNLISTEN ${quoteChannel(channel)}`).catch(noop);
    };
    try {
      // A later subscriber to a channel also waits for a LISTEN: the first one's may still be
      // out, and only one sent after it surely lands after it.
      await withTimeout(
        this.connection().then((client) => client.query(`LISTEN ${quoteChannel(channel)}`)),
        this.timeoutMs,
        first ? 'LISTEN' : 'LISTEN (again)',
      );
    } catch (error) {
      unsubscribe();
      throw error;
    }
    return { unsubscribe };
  }

  /** @internal The backend pid of the LISTEN connection, for tests; undefined when none. */
  get backendPid(): number | undefined {
    return (this.client as { processID?: number } | undefined)?.processID;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.channels.clear();
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    if (client !== undefined) await withTimeout(client.end(), this.timeoutMs, 'end').catch(noop);
  }

  private connection(): Promise<Client> {
    if (this.client !== undefined) return Promise.resolve(this.client);
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connect(): Promise<Client> {
    const client = this.createClient();
    // Errors surface as failed queries and as 'end'; an unhandled 'error' would end the process.
    client.on('error', noop);
    client.on('notification', (message: Notification) => this.dispatch(message));
    client.on('end', () => this.lost(client));
    try {
      await withTimeout(client.connect(), this.timeoutMs, 'connect');
      const channels = [...this.channels.keys()];
      if (channels.length > 0) {
        await withTimeout(
          client.query(channels.map((channel) => `LISTEN ${quoteChannel(channel)};`).join('\n')),
          this.timeoutMs,
          'LISTEN',
        );
      }
    } catch (error) {
      client.end().catch(noop);
      throw error;
    }
    if (this.closed) {
      client.end().catch(noop);
      throw new Error('The store is closed');
    }
    this.client = client;
    this.reconnectDelayMs = RECONNECT_MIN_MS;
    if (this.resyncPending) {
      this.resyncPending = false;
      this.resyncAll();
    }
    return client;
  }

  private lost(client: Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    if (this.channels.size > 0) this.resyncPending = true;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.channels.size === 0 || this.reconnectTimer !== undefined) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.closed || this.client !== undefined) return;
      this.connection().catch(() => {
        this.reconnectDelayMs = Math.min(this.reconnectDelayMs * 2, RECONNECT_MAX_MS);
        this.scheduleReconnect();
      });
    }, this.reconnectDelayMs);
    this.reconnectTimer.unref();
  }

  private resyncAll(): void {
    for (const listeners of this.channels.values()) {
      for (const listener of [...listeners]) listener.onResync();
    }
  }

  private dispatch(message: Notification): void {
    const listeners = this.channels.get(message.channel);
    if (listeners === undefined) return;
    const payload = message.payload ?? '';
    // An empty payload says "something happened, read the row": the outcome was too large to
    // travel in a notification (8000 bytes at most).
    if (payload.length === 0) {
      for (const listener of [...listeners]) listener.onResync();
      return;
    }
    const bytes = Buffer.from(payload, 'base64');
    for (const listener of [...listeners]) listener.onMessage(bytes);
  }
}

/** Channel names are `ie_` and hex digits (see names.ts); quoted all the same. */
function quoteChannel(channel: string): string {
  return `"${channel.replace(/"/g, '""')}"`;
}

/** Rejects after `ms` if `promise` has not settled by then. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`PostgreSQL did not answer ${what} within ${ms} ms`)),
      ms,
    );
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

const RECONNECT_MIN_MS = 50;
const RECONNECT_MAX_MS = 1_000;

function noop(): void {}
