// The Redis server faults: CLIENT KILL, CLIENT PAUSE, a SIGKILL and restart of the harness's own
// redis-server, and, through the harness's TCP proxy that every worker connection goes through,
// partitions without a reset (one worker's connections, or only the subscriber connections,
// blackholed) and latency spikes.
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import type { OwnRedisServer } from '../helpers/redis.js';
import { now } from '../helpers/worker/protocol.js';
import type { ServerFault } from './evidence.js';
import { type ServerFaultSet, sleep } from './faults.js';
import type { ChaosOptions } from './options.js';
import { workerName } from './protocol.js';
import type { Storm } from './storm.js';
import type { FaultyProxy } from './tcp-proxy.js';

/** How long after a connection kill its effects (reconnect, retried commands) may show, ms. */
const RECONNECT_GRACE_MS = 1_000;
/**
 * How long the next server fault waits after a connection kill or a restart: until the killed
 * connections are back and subscribed again. Faults are run one at a time so that each one's
 * effects are its own; a partition landing on a connection still resubscribing is the
 * combination that found the unhandled rejection described in docs/chaos.md.
 */
const RECONNECTED_MS = 1_500;
/** The delay a latency spike adds to each chunk either way, ms. */
const LATENCY_RANGE_MS = [100, 500] as const;
/** How long fn keeps running after it told the parent to partition its worker, ms. */
const HOLD_MS = 200;
/** How long the parent waits for a worker's fn to reach the partition point, ms. */
const HOLD_TIMEOUT_MS = 5_000;

export class RedisFaults implements ServerFaultSet {
  readonly inject = {
    'client-kill': (round: number) => this.killConnections(round),
    pause: (round: number) => this.pause(round),
    restart: () => this.restart(),
    partition: () => this.partitionWorker(),
    'sub-partition': () => this.partitionSubscribers(),
    latency: () => this.latencySpike(),
  };
  private readonly admin: Redis;

  constructor(
    private readonly options: ChaosOptions,
    private readonly storm: Storm,
    private readonly server: OwnRedisServer,
    private readonly proxy: FaultyProxy,
  ) {
    this.admin = new Redis(server.url, { maxRetriesPerRequest: 3 });
    this.admin.on('error', () => {});
  }

  async close(): Promise<void> {
    this.proxy.heal();
    this.admin.disconnect();
  }

  /**
   * A partition of one busy worker, longer than the lease: every connection of it (commands and
   * subscriber) goes silent, no reset. Its renewals cannot reach Redis, so its leases run out
   * while fn runs there, and a waiter elsewhere takes over; what it sent meanwhile (renewals,
   * completions) reaches Redis when the partition heals, and must be refused.
   */
  private async partitionWorker(): Promise<ServerFault | undefined> {
    const slot = this.storm.busySlot();
    const worker = slot === undefined ? undefined : this.storm.workerOf(slot);
    if (slot === undefined || worker === undefined) return undefined;
    try {
      // The worker's next fn says so and keeps running a little: the partition begins inside it.
      const held = await this.storm.holdFn(slot, HOLD_MS, HOLD_TIMEOUT_MS);
      if (held === undefined) return undefined;
      const name = workerName(slot, worker.pid);
      const from = now();
      const silenced = this.proxy.blackholeSome((link) => link.name === name);
      await sleep(this.options.partitionMs);
      this.proxy.heal();
      const healed = now();
      return {
        kind: 'partition',
        from,
        // Leases it could not renew run out up to a lease after it began; what it held reaches
        // Redis on healing, and commands that timed out meanwhile are answered then.
        to: healed + this.options.leaseMs + this.options.storeTimeoutMs,
        pid: worker.pid,
        detail: `${silenced} connections of worker ${slot} (pid ${worker.pid}) blackholed ${Math.round(healed - from)} ms, from inside fn of ${held.key}`,
      };
    } finally {
      this.storm.healed(slot);
    }
  }

  /**
   * A partition of every subscriber connection while command connections pass: waiters hear no
   * completion, and a SUBSCRIBE sent meanwhile gets no answer. Waiters must still settle within
   * their bound (by the lease's PTTL, then a claim that finds the record).
   */
  private async partitionSubscribers(): Promise<ServerFault | undefined> {
    const from = now();
    const silenced = this.proxy.blackholeSome((link) => link.subscriber);
    await sleep(this.options.partitionMs);
    this.proxy.heal();
    const healed = now();
    if (silenced === 0) return undefined;
    return {
      kind: 'sub-partition',
      from,
      to: healed + this.options.storeTimeoutMs + RECONNECT_GRACE_MS,
      detail: `${silenced} subscriber connections blackholed ${Math.round(healed - from)} ms, commands passing`,
    };
  }

  /** Every connection slowed by +100-500 ms each way for `latencyMs`. */
  private async latencySpike(): Promise<ServerFault> {
    const from = now();
    const [min, max] = LATENCY_RANGE_MS;
    this.proxy.slowDown(min, max);
    await sleep(this.options.latencyMs);
    this.proxy.heal();
    const healed = now();
    const connections = this.proxy.connections;
    return {
      kind: 'latency',
      from,
      // Chunks already delayed arrive up to `max` later; a lease renewed late may still run out.
      to: healed + max + this.options.leaseMs,
      detail: `+${min}-${max} ms each way on ${connections} connections for ${Math.round(healed - from)} ms`,
    };
  }

  /**
   * Even rounds: every connection of one busy worker (commands and subscriber), by id.
   * Odd rounds: every subscriber connection of every worker (CLIENT KILL TYPE pubsub).
   */
  private async killConnections(round: number): Promise<ServerFault | undefined> {
    const from = now();
    const to = from + this.options.storeTimeoutMs + RECONNECT_GRACE_MS;
    if (round % 2 === 1) {
      const killed = await this.admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      // No worker was subscribed at that moment: hit one worker instead.
      if (killed !== 0) {
        await sleep(RECONNECTED_MS);
        return { kind: 'client-kill', from, to, detail: `TYPE pubsub: ${killed} connections` };
      }
    }
    const slot = this.storm.busySlot();
    const worker = slot === undefined ? undefined : this.storm.workerOf(slot);
    if (slot === undefined || worker === undefined) return undefined;
    const name = workerName(slot, worker.pid);
    const list = (await this.admin.call('CLIENT', 'LIST', 'TYPE', 'normal')) as string;
    const subscribers = (await this.admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string;
    const ids = `${list}\n${subscribers}`
      .split('\n')
      .filter((line) => line.includes(` name=${name} `))
      .map((line) => /^id=(\d+)/.exec(line)?.[1])
      .filter((id): id is string => id !== undefined);
    for (const id of ids) await this.admin.call('CLIENT', 'KILL', 'ID', id);
    if (ids.length === 0) return undefined;
    await sleep(RECONNECTED_MS);
    return {
      kind: 'client-kill',
      from,
      to,
      pid: worker.pid,
      detail: `${ids.length} connections of worker ${slot} (pid ${worker.pid})`,
    };
  }

  /** Alternates CLIENT PAUSE WRITE and ALL. */
  private async pause(round: number): Promise<ServerFault> {
    const mode = round % 2 === 0 ? 'WRITE' : 'ALL';
    const from = now();
    await this.admin.call('CLIENT', 'PAUSE', String(this.options.pauseMs), mode);
    // Hold the queue until the pause is over, so faults do not overlap.
    await sleep(this.options.pauseMs);
    return {
      kind: 'pause',
      from,
      to: from + this.options.pauseMs + this.options.storeTimeoutMs,
      detail: `CLIENT PAUSE ${this.options.pauseMs} ${mode}`,
    };
  }

  /**
   * SIGKILL the Redis server (no clean shutdown: only what AOF fsynced survives), keep it down
   * for `downMs`, and start it again on the same port.
   */
  private async restart(): Promise<ServerFault> {
    const from = now();
    await this.server.stop('SIGKILL');
    await sleep(this.options.downMs);
    // startProcess() polls through an ioredis client whose ready check backs off for a second
    // while Redis loads its AOF; a raw PING tells when Redis answers again.
    const [up] = await Promise.all([answersPing(this.server.port), this.server.startProcess()]);
    await sleep(RECONNECTED_MS);
    return {
      kind: 'restart',
      from,
      // Commands that failed while it was down are retried until a lease's end.
      to: up + this.options.leaseMs,
      detail: `down ${Math.round(up - from)} ms, ${this.options.persistence ? 'AOF (appendfsync always)' : 'no persistence'}`,
    };
  }
}

/** Resolves with the time the server on `port` first answers PING with PONG. */
async function answersPing(port: number): Promise<number> {
  for (;;) {
    const answered = await new Promise<boolean>((resolve) => {
      const socket = connect({ port, host: '127.0.0.1' });
      socket.setTimeout(200, () => socket.destroy());
      socket.on('error', () => resolve(false));
      socket.on('close', () => resolve(false));
      socket.on('data', (data) => {
        resolve(data.toString().startsWith('+PONG'));
        socket.destroy();
      });
      socket.on('connect', () => socket.write('PING\r\n'));
    });
    if (answered) return now();
    await sleep(5);
  }
}
