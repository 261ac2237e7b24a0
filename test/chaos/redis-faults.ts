// The Redis server faults: CLIENT KILL, CLIENT PAUSE, and a SIGKILL and restart of the harness's
// own redis-server.
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import type { OwnRedisServer } from '../helpers/redis.js';
import type { ServerFault } from './evidence.js';
import { type ServerFaultSet, sleep } from './faults.js';
import type { ChaosOptions } from './options.js';
import { now, workerName } from './protocol.js';
import type { Storm } from './storm.js';

/** How long after a connection kill its effects (reconnect, retried commands) may show, ms. */
const RECONNECT_GRACE_MS = 1_000;

export class RedisFaults implements ServerFaultSet {
  readonly inject = {
    'client-kill': (round: number) => this.killConnections(round),
    pause: (round: number) => this.pause(round),
    restart: () => this.restart(),
  };
  private readonly admin: Redis;

  constructor(
    private readonly options: ChaosOptions,
    private readonly storm: Storm,
    private readonly server: OwnRedisServer,
  ) {
    this.admin = new Redis(server.url, { maxRetriesPerRequest: 3 });
    this.admin.on('error', () => {});
  }

  async close(): Promise<void> {
    this.admin.disconnect();
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
