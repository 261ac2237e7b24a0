// When and how faults are injected. Each enabled fault is planned `rounds` times at random points
// of the storm's progress (share of callers settled), so every one lands however fast the storm
// runs. Worker faults are armed in a busy worker and land at its next execution of fn; Redis
// faults are run by the parent, one at a time, and logged with the window of their effects.
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import type { OwnRedisServer } from '../helpers/redis.js';
import type { Evidence, RedisFault } from './evidence.js';
import type { ChaosOptions, FaultKind } from './options.js';
import { now } from './protocol.js';
import type { Storm } from './storm.js';

interface PlannedFault {
  readonly kind: FaultKind;
  /** Share of callers settled at which it fires. */
  readonly at: number;
  readonly round: number;
}

/** How long after a connection kill its effects (reconnect, retried commands) may show, ms. */
const RECONNECT_GRACE_MS = 1_000;

export class FaultInjector {
  private readonly plan: PlannedFault[];
  private readonly admin: Redis;
  /** Redis faults run one after another. */
  private redisQueue: Promise<void> = Promise.resolve();

  constructor(
    private readonly options: ChaosOptions,
    private readonly storm: Storm,
    private readonly server: OwnRedisServer,
    private readonly evidence: Evidence,
  ) {
    this.plan = planFaults(options);
    this.admin = new Redis(server.url, { maxRetriesPerRequest: 3 });
    this.admin.on('error', () => {});
    storm.onProgress((settled, total) => this.fireDue(settled / total));
  }

  /** Waits for the Redis faults still running, then closes the admin connection. */
  async close(): Promise<void> {
    this.plan.length = 0;
    await this.redisQueue;
    this.admin.disconnect();
  }

  private fireDue(progress: number): void {
    while (this.plan.length > 0 && (this.plan[0] as PlannedFault).at <= progress) {
      const fault = this.plan.shift() as PlannedFault;
      if (!this.fire(fault)) {
        // No worker has work left to fault: nothing to do but give up on this one.
        process.stderr.write(`chaos: ${fault.kind} (round ${fault.round}) found no busy worker\n`);
      }
    }
  }

  private fire(fault: PlannedFault): boolean {
    const { options, storm } = this;
    switch (fault.kind) {
      case 'kill-mid':
      case 'kill-after':
      case 'stall': {
        const slot = storm.busySlot();
        if (slot === undefined) return false;
        storm.arm(
          slot,
          fault.kind === 'stall' ? { kind: 'stall', ms: options.stallMs } : { kind: fault.kind },
        );
        return true;
      }
      case 'client-kill':
        return this.enqueue(() => this.killConnections(fault.round));
      case 'pause':
        return this.enqueue(() => this.pause(fault.round));
      case 'restart':
        return this.enqueue(() => this.restart());
    }
  }

  private enqueue(fault: () => Promise<RedisFault | undefined>): boolean {
    this.redisQueue = this.redisQueue.then(async () => {
      try {
        const logged = await fault();
        if (logged === undefined) return;
        this.evidence.redisFaults.push(logged);
        this.evidence.land(logged.kind);
      } catch (error) {
        process.stderr.write(`chaos: a Redis fault failed: ${String(error)}\n`);
      }
    });
    return true;
  }

  /**
   * Even rounds: every connection of one busy worker (commands and subscriber), by id.
   * Odd rounds: every subscriber connection of every worker (CLIENT KILL TYPE pubsub).
   */
  private async killConnections(round: number): Promise<RedisFault | undefined> {
    const from = now();
    const to = from + this.options.storeTimeoutMs + RECONNECT_GRACE_MS;
    if (round % 2 === 1) {
      const killed = await this.admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      // No worker was subscribed at that moment: hit one worker instead.
      if (killed !== 0) {
        return { kind: 'client-kill', from, to, detail: `TYPE pubsub: ${killed} connections` };
      }
    }
    const slot = this.storm.busySlot();
    const worker = slot === undefined ? undefined : this.storm.workerOf(slot);
    if (slot === undefined || worker === undefined) return undefined;
    const name = `chaos-w${slot}-${worker.pid}`;
    const list = (await this.admin.call('CLIENT', 'LIST', 'TYPE', 'normal')) as string;
    const subscribers = (await this.admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string;
    const ids = `${list}\n${subscribers}`
      .split('\n')
      .filter((line) => line.includes(` name=${name} `))
      .map((line) => /^id=(\d+)/.exec(line)?.[1])
      .filter((id): id is string => id !== undefined);
    for (const id of ids) await this.admin.call('CLIENT', 'KILL', 'ID', id);
    if (ids.length === 0) return undefined;
    return {
      kind: 'client-kill',
      from,
      to,
      pid: worker.pid,
      detail: `${ids.length} connections of worker ${slot} (pid ${worker.pid})`,
    };
  }

  /** Alternates CLIENT PAUSE WRITE and ALL. */
  private async pause(round: number): Promise<RedisFault> {
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
  private async restart(): Promise<RedisFault> {
    const from = now();
    await this.server.stop('SIGKILL');
    await sleep(this.options.downMs);
    // startProcess() polls through an ioredis client whose ready check backs off for a second
    // while Redis loads its AOF; a raw PING tells when Redis answers again.
    const [up] = await Promise.all([answersPing(this.server.port), this.server.startProcess()]);
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function planFaults(options: ChaosOptions): PlannedFault[] {
  const plan: PlannedFault[] = [];
  for (const kind of options.faults) {
    for (let round = 0; round < options.rounds; round++) {
      plan.push({ kind, round, at: 0.05 + Math.random() * 0.6 });
    }
  }
  return plan.sort((a, b) => a.at - b.at);
}
