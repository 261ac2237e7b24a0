import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of Redis that counts what clients write: with one operation in flight at a
 * time, each client-to-server write is one round trip (the client waits for the answer before
 * writing again), whatever the client batches into it.
 */
export class CountingProxy {
  /** Client-to-server writes seen since the last `reset()`. */
  writes = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server) {}

  static async start(redisPort: number): Promise<CountingProxy> {
    let proxy: CountingProxy | undefined;
    const server = createServer((client) => {
      const upstream = createConnection({ host: '127.0.0.1', port: redisPort });
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      proxy?.sockets.add(client).add(upstream);
      client.on('data', (chunk) => {
        if (proxy !== undefined) proxy.writes++;
        upstream.write(chunk);
      });
      upstream.on('data', (chunk) => client.write(chunk));
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
    proxy = new CountingProxy(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    const address = this.server.address();
    return `redis://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  }

  reset(): void {
    this.writes = 0;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
