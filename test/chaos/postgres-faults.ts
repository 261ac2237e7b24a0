// The PostgreSQL server faults. The server is shared with others and stays up: the harness kills
// the workers' backends, locks the store's table, and makes PostgreSQL unreachable for the
// workers by cutting or blackholing the TCP proxy their store connections go through. The admin
// connection used here goes to PostgreSQL directly, as do the workers' execution logs.
import pg from 'pg';
import { now } from '../helpers/worker/protocol.js';
import type { ServerFault } from './evidence.js';
import { type ServerFaultSet, sleep } from './faults.js';
import type { ChaosOptions } from './options.js';
import { workerName } from './protocol.js';
import type { Storm } from './storm.js';
import type { FaultyProxy } from './tcp-proxy.js';

/** How long after a killed backend its effects (reconnect, retried statements) may show, ms. */
const RECONNECT_GRACE_MS = 1_000;
/** The `application_name` of a PostgresStore's LISTEN connection. */
const LISTENER_NAME = 'idempotent-executor listener';

export class PostgresFaults implements ServerFaultSet {
  readonly inject = {
    'backend-kill': (round: number) => this.killBackends(round),
    lock: () => this.lockTable(),
    unreachable: (round: number) => this.unreachable(round),
  };
  private closed = false;

  private constructor(
    private readonly options: ChaosOptions,
    private readonly storm: Storm,
    private readonly admin: pg.Client,
    private readonly proxy: FaultyProxy,
    private readonly table: string,
  ) {}

  /** `databaseUrl` reaches the run's database directly; `table` is the store's, unquoted. */
  static async open(
    options: ChaosOptions,
    storm: Storm,
    databaseUrl: string,
    proxy: FaultyProxy,
    table: string,
  ): Promise<PostgresFaults> {
    const admin = new pg.Client({ connectionString: databaseUrl, application_name: 'chaos-admin' });
    admin.on('error', () => {});
    await admin.connect();
    return new PostgresFaults(options, storm, admin, proxy, table);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.proxy.heal();
    await this.admin.end();
  }

  /**
   * `pg_terminate_backend`. Even rounds: every pooled connection of one busy worker (found by
   * its `application_name`), an open transaction of the transactional mode included. Odd rounds:
   * every worker's LISTEN connection.
   */
  private async killBackends(round: number): Promise<ServerFault | undefined> {
    const from = now();
    const to = from + this.options.storeTimeoutMs + RECONNECT_GRACE_MS;
    if (round % 2 === 1) {
      const killed = await this.terminate(LISTENER_NAME);
      // No worker was listening at that moment: hit one worker instead.
      if (killed > 0) {
        return { kind: 'backend-kill', from, to, detail: `every LISTEN connection: ${killed}` };
      }
    }
    const slot = this.storm.busySlot();
    const worker = slot === undefined ? undefined : this.storm.workerOf(slot);
    if (slot === undefined || worker === undefined) return undefined;
    const killed = await this.terminate(workerName(slot, worker.pid));
    if (killed === 0) return undefined;
    return {
      kind: 'backend-kill',
      from,
      to,
      pid: worker.pid,
      detail: `${killed} pooled connections of worker ${slot} (pid ${worker.pid})`,
    };
  }

  private async terminate(applicationName: string): Promise<number> {
    const { rows } = await this.admin.query<{ killed: boolean }>(
      `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
       WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()`,
      [applicationName],
    );
    return rows.filter((row) => row.killed).length;
  }

  /**
   * PostgreSQL's CLIENT PAUSE: an ACCESS EXCLUSIVE lock on the store's table for `pauseMs`;
   * every statement of every worker on it waits meanwhile (and those that time out on the
   * client still run when the lock goes).
   */
  private async lockTable(): Promise<ServerFault> {
    const from = now();
    let granted: number;
    try {
      await this.admin.query('BEGIN');
      await this.admin.query(`SET LOCAL lock_timeout = ${this.options.storeTimeoutMs}`);
      await this.admin.query(`LOCK TABLE "${this.table}" IN ACCESS EXCLUSIVE MODE`);
      granted = now();
      await sleep(this.options.pauseMs);
      await this.admin.query('COMMIT');
    } catch (error) {
      await this.admin.query('ROLLBACK').catch(() => {});
      throw error;
    }
    return {
      kind: 'lock',
      from,
      to: now() + this.options.storeTimeoutMs,
      detail: `LOCK TABLE ACCESS EXCLUSIVE ${this.options.pauseMs} ms (granted after ${Math.round(granted - from)} ms)`,
    };
  }

  /**
   * PostgreSQL unreachable for `downMs`. Even rounds: the proxy closes every connection and
   * refuses new ones (a server gone). Odd rounds: it forwards nothing and closes nothing (a
   * partition: statements time out on the client, and what was sent is delivered on healing).
   */
  private async unreachable(round: number): Promise<ServerFault> {
    const from = now();
    const cut = round % 2 === 0;
    const connections = cut ? this.proxy.cut() : this.proxy.blackhole();
    await sleep(this.options.downMs);
    this.proxy.heal();
    const healed = now();
    return {
      kind: 'unreachable',
      from,
      // Leases that could not be renewed meanwhile run out up to a lease after, and statements
      // held by a blackhole run when it heals.
      to: healed + this.options.leaseMs + this.options.storeTimeoutMs,
      detail: cut
        ? `cut for ${Math.round(healed - from)} ms: ${connections} connections closed, new ones refused`
        : `blackholed for ${Math.round(healed - from)} ms: ${connections} connections silent, new ones unanswered`,
    };
  }
}
