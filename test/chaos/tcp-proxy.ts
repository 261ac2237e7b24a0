// A TCP proxy of the harness's own between the workers and PostgreSQL, which is shared with
// others and cannot be stopped: the workers' store connections go through it, so the harness
// can make PostgreSQL unreachable for them, and them only.
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

interface Link {
  readonly client: Socket;
  readonly upstream: Socket;
}

export class FaultyProxy {
  private readonly links = new Set<Link>();
  private mode: ProxyMode = 'open';

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
    for (const link of this.links) {
      link.client.pause();
      link.upstream.pause();
    }
    return this.links.size;
  }

  /** Back to forwarding; held traffic flows on. */
  heal(): void {
    this.mode = 'open';
    for (const link of this.links) {
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
    const link: Link = { client, upstream };
    this.links.add(link);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    if (this.mode === 'blackhole') {
      client.pause();
      upstream.pause();
    }
    // Not pipe(): its drain handling may resume a socket the blackhole paused.
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => client.write(chunk));
    // An orderly end is passed on after what was sent before it; a reset closes both at once.
    const end = () => {
      client.end();
      upstream.end();
    };
    const gone = () => this.drop(link);
    client.on('end', end).on('close', gone).on('error', gone);
    upstream.on('end', end).on('close', gone).on('error', gone);
  }

  private drop(link: Link): void {
    this.links.delete(link);
    link.client.destroy();
    link.upstream.destroy();
  }
}
