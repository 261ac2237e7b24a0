// A small payment provider on loopback for the payments tests: it honours Idempotency-Key the
// way real providers do (a repeated key gets the first response, no new charge), counts real
// charges per order, and can be told to decline, fail transiently or time out for an order.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Behaviour = 'ok' | 'decline' | 'fail-once' | 'slow-once';

interface StoredResponse {
  status: number;
  body: unknown;
}

export class FakeProvider {
  readonly charges = new Map<string, number>();
  readonly requests = new Map<string, number>();
  readonly keysByOrder = new Map<string, Set<string>>();
  private readonly responses = new Map<string, StoredResponse>();
  private readonly behaviours = new Map<string, Behaviour>();
  private readonly misbehaved = new Set<string>();
  private server: Server | undefined;

  constructor(private readonly slowMs = 800) {}

  behave(order: string, behaviour: Behaviour): void {
    this.behaviours.set(order, behaviour);
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      let raw = '';
      req.on('data', (chunk: Buffer) => {
        raw += chunk.toString();
      });
      req.on('end', () => {
        const { order, amount } = JSON.parse(raw) as { order: string; amount: number };
        const key = String(req.headers['idempotency-key'] ?? '');
        this.requests.set(order, (this.requests.get(order) ?? 0) + 1);
        const keys = this.keysByOrder.get(order) ?? new Set<string>();
        keys.add(key);
        this.keysByOrder.set(order, keys);
        const reply = (response: StoredResponse, delayMs = 0) =>
          setTimeout(() => {
            if (res.destroyed) return;
            res.writeHead(response.status, { 'content-type': 'application/json' });
            res.end(JSON.stringify(response.body));
          }, delayMs);

        const stored = this.responses.get(key);
        if (stored !== undefined) return reply(stored);
        const behaviour = this.behaviours.get(order) ?? 'ok';
        const firstTime = !this.misbehaved.has(order);
        if (behaviour === 'fail-once' && firstTime) {
          this.misbehaved.add(order);
          return reply({ status: 503, body: { error: 'upstream_unavailable' } });
        }
        const response: StoredResponse =
          behaviour === 'decline'
            ? { status: 402, body: { error: 'card_declined', decline_code: 'insufficient_funds' } }
            : { status: 200, body: { id: `ch_${order}`, order, amount } };
        if (response.status === 200) this.charges.set(order, (this.charges.get(order) ?? 0) + 1);
        this.responses.set(key, response);
        if (behaviour === 'slow-once' && firstTime) {
          this.misbehaved.add(order);
          return reply(response, this.slowMs); // charged, but the answer comes too late
        }
        return reply(response);
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}
