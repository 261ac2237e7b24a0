// A TCP proxy of the harness's own between the workers and their store's server (Redis, or
// PostgreSQL, which is shared with others and cannot be stopped): the workers' store connections
// go through it, so the harness can partition them (all, one worker's, or only the subscriber
// connections), slow them down, or cut them, without a reset the client would notice.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** What the proxy does with traffic. */
export type ProxyMode =
  /** Forwards both ways. */
  | 'open'
  /** Every connection closed at once; new ones accepted and closed at once (a refused server). */
  | 'cut'
  /**
   * Nothing forwarded either way, nothing closed; new connections accepted and left silent (a
   * partition). Sockets stop reading, so what is sent meanwhile waits in the kernel's buffers,
   * and is delivered when the partition heals, as TCP retransmission would deliver it.
   */
  | 'blackhole';

/**
 * What the proxy learned of a connection from what its client sent (Redis only): the name it
 * gave itself (`CLIENT SETNAME`, which ioredis sends for `connectionName`), and whether it is a
 * subscriber connection (it sent SUBSCRIBE or SSUBSCRIBE).
 */
export interface LinkIdentity {
  name: string | undefined;
  subscriber: boolean;
}

/** Picks the connections a selective blackhole holds. */
export type LinkFilter = (identity: LinkIdentity) => boolean;

interface Link {
  readonly client: Socket;
  readonly upstream: Socket;
  readonly identity: LinkIdentity;
  /** Held by a selective blackhole. */
  held: boolean;
  /** When the last delayed chunk of each direction is released, for order under latency. */
  upReleaseAt: number;
  downReleaseAt: number;
}

/** RESP bulk strings the identity is read from: `CLIENT SETNAME <name>`, `[S]SUBSCRIBE`. */
const SETNAME = /\$7\r\nsetname\r\n\$\d+\r\n([^\r]*)\r\n/i;
const SUBSCRIBE = /\$(9\r\nsubscribe|10\r\nssubscribe)\r\n/i;

export class FaultyProxy {
  private readonly links = new Set<Link>();
  private mode: ProxyMode = 'open';
  /** Selective blackholes in force: a connection matching any is held, new ones included. */
  private readonly holds = new Set<LinkFilter>();
  /** Added delay per chunk, [min, max] ms; undefined: none. */
  private latency: readonly [number, number] | undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** Listens on a free port of 127.0.0.1 and forwards to `host:port`. */
  static async start(host: string, port: number): Promise<FaultyProxy> {
    let proxy: FaultyProxy | undefined;
    const server = createServer((client) => proxy?.accept(client, host, port));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    proxy = new FaultyProxy(
      server,
      typeof address === 'object' && address !== null ? address.port : 0,
    );
    return proxy;
  }

  /** How many client connections are open. */
  get connections(): number {
    return this.links.size;
  }

  /** What the proxy knows of each open connection. */
  identities(): LinkIdentity[] {
    return [...this.links].map((link) => ({ ...link.identity }));
  }

  /** Closes every connection and refuses new ones until {@link heal}. Returns how many closed. */
  cut(): number {
    this.mode = 'cut';
    const count = this.links.size;
    for (const link of this.links) this.drop(link);
    return count;
  }

  /** Forwards nothing until {@link heal}; returns how many connections went silent. */
  blackhole(): number {
    this.mode = 'blackhole';
    for (const link of this.links) this.pause(link);
    return this.links.size;
  }

  /**
   * Forwards nothing on the connections `filter` picks (now, or once they identify themselves)
   * until {@link heal}; the others flow on. Returns how many connections went silent now.
   */
  blackholeSome(filter: LinkFilter): number {
    this.holds.add(filter);
    let count = 0;
    for (const link of this.links) {
      if (link.held || !filter(link.identity)) continue;
      link.held = true;
      this.pause(link);
      count++;
    }
    return count;
  }

  /** Delays every chunk either way by a random [minMs, maxMs], in order, until {@link heal}. */
  slowDown(minMs: number, maxMs: number): number {
    this.latency = [minMs, maxMs];
    return this.links.size;
  }

  /** Back to forwarding at full speed; held traffic flows on. */
  heal(): void {
    this.mode = 'open';
    this.holds.clear();
    this.latency = undefined;
    for (const link of this.links) {
      link.held = false;
      link.client.resume();
      link.upstream.resume();
    }
  }

  async close(): Promise<void> {
    for (const link of this.links) this.drop(link);
    await new Promise((resolve) => this.server.close(resolve));
  }

  private accept(client: Socket, host: string, port: number): void {
    if (this.mode === 'cut') {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host, port });
    const link: Link = {
      client,
      upstream,
      identity: { name: undefined, subscriber: false },
      held: false,
      upReleaseAt: 0,
      downReleaseAt: 0,
    };
    this.links.add(link);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    if (this.mode === 'blackhole') this.pause(link);
    // Not pipe(): its drain handling may resume a socket the blackhole paused.
    client.on('data', (chunk: Buffer) => {
      this.identify(link, chunk);
      this.forward(link, 'up', chunk);
    });
    upstream.on('data', (chunk: Buffer) => this.forward(link, 'down', chunk));
    // An orderly end is passed on after what was sent before it; a reset closes both at once.
    const end = () => {
      client.end();
      upstream.end();
    };
    const gone = () => this.drop(link);
    client.on('end', end).on('close', gone).on('error', gone);
    upstream.on('end', end).on('close', gone).on('error', gone);
  }

  /** Reads the connection's name and role from its client's first commands. */
  private identify(link: Link, chunk: Buffer): void {
    const { identity } = link;
    if (identity.subscriber) return;
    const text = chunk.toString('latin1');
    if (identity.name === undefined) {
      const name = SETNAME.exec(text)?.[1];
      if (name !== undefined) identity.name = name;
    }
    if (SUBSCRIBE.test(text)) identity.subscriber = true;
    if (!link.held && [...this.holds].some((filter) => filter(identity))) {
      link.held = true;
      this.pause(link);
    }
  }

  private forward(link: Link, direction: 'up' | 'down', chunk: Buffer): void {
    const target = direction === 'up' ? link.upstream : link.client;
    const now = Date.now();
    const previous = direction === 'up' ? link.upReleaseAt : link.downReleaseAt;
    if (this.latency === undefined && previous <= now) {
      target.write(chunk);
      return;
    }
    const [min, max] = this.latency ?? [0, 0];
    // Never before an earlier chunk: TCP delivers in order, however late.
    const releaseAt = Math.max(previous, now + min + Math.random() * (max - min));
    if (direction === 'up') link.upReleaseAt = releaseAt;
    else link.downReleaseAt = releaseAt;
    setTimeout(() => {
      if (!target.destroyed) target.write(chunk);
    }, releaseAt - now);
  }

  private pause(link: Link): void {
    link.client.pause();
    link.upstream.pause();
  }

  private drop(link: Link): void {
    this.links.delete(link);
    link.client.destroy();
    link.upstream.destroy();
  }
}
