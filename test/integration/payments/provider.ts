// A small payment provider on loopback for the payments tests: it honours Idempotency-Key the
// way Stripe does (a repeated key gets the first stored response, no new charge), counts real
// charges per order, and can be told to decline, fail transiently, time out, or answer that the
// key is in use, for an order. It speaks Stripe's wire format closely enough for the real
// stripe-node SDK (form-encoded `POST /v1/payment_intents`, `{ error: { type, code, ... } }`
// bodies), and JSON for the plain fetch client of client.ts.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Behaviour =
  /** Charged and answered at once. */
  | 'ok'
  /** 402 `card_error` / `card_declined`, stored under the key like every response Stripe saves. */
  | 'decline'
  /** The first request gets a 503 (not stored, no charge); later ones behave as 'ok'. */
  | 'fail-once'
  /** The first request is charged and stored, but answered after `slowMs`: too late. */
  | 'slow-once'
  /**
   * The first request gets Stripe's 409 `idempotency_key_in_use` (another request holds the
   * key); nothing is stored, no charge; later ones behave as 'ok'.
   */
  | 'in-use-once';

interface StoredResponse {
  status: number;
  body: unknown;
}

interface ChargeRequest {
  order: string;
  amount: number;
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

  /** The port it listens on (for stripe-node's `host` / `port` configuration). */
  get port(): number {
    const address = this.server?.address() as AddressInfo | null | undefined;
    if (!address) throw new Error('the provider is not listening');
    return address.port;
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      let raw = '';
      req.on('data', (chunk: Buffer) => {
        raw += chunk.toString();
      });
      req.on('end', () => {
        const { order, amount } = parseCharge(req, raw);
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
          return reply(stripeError(503, 'api_error', 'upstream_unavailable', 'Try again later.'));
        }
        if (behaviour === 'in-use-once' && firstTime) {
          this.misbehaved.add(order);
          return reply(
            stripeError(
              409,
              'idempotency_error',
              'idempotency_key_in_use',
              'There is currently another in-progress request using this idempotency key. Please try again later.',
            ),
          );
        }
        const response: StoredResponse =
          behaviour === 'decline'
            ? stripeError(402, 'card_error', 'card_declined', 'Your card has insufficient funds.', {
                decline_code: 'insufficient_funds',
              })
            : {
                status: 200,
                body: { id: `pi_${order}`, object: 'payment_intent', order, amount },
              };
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
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

/** The order and amount of a request: JSON `{ order, amount }`, or Stripe's form encoding. */
function parseCharge(req: IncomingMessage, raw: string): ChargeRequest {
  if (String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) {
    const form = new URLSearchParams(raw);
    return { order: form.get('metadata[order]') ?? '', amount: Number(form.get('amount')) };
  }
  return JSON.parse(raw) as ChargeRequest;
}

function stripeError(
  status: number,
  type: string,
  code: string,
  message: string,
  extra: Record<string, string> = {},
): StoredResponse {
  return { status, body: { error: { type, code, message, ...extra } } };
}
