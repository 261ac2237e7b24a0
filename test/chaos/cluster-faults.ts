// `--cluster`: the storm against a local Redis Cluster of 3 masters and 3 replicas (see
// test/cluster/support/local-cluster.ts), and its server faults: CLIENT KILL and CLIENT PAUSE on
// every node, a master SIGKILLed (its replica fails over; the killed node is started again and
// rejoins as a replica), and slots migrated between masters while their keys are in flight.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import {
  type ClusterNodeProcess,
  LocalCluster,
  redisServerArgs,
} from '../cluster/support/local-cluster.js';
import { waitUntil } from '../helpers/redis.js';
import { now } from '../helpers/worker/protocol.js';
import type { ServerFault } from './evidence.js';
import { type ServerFaultSet, sleep } from './faults.js';
import type { ChaosOptions } from './options.js';
import { workerName } from './protocol.js';
import type { Storm } from './storm.js';

const run = promisify(execFile);

const MASTERS = 3;
const REPLICAS_PER_MASTER = 1;
/** `cluster-node-timeout` of the local cluster (LocalCluster's default). */
const NODE_TIMEOUT_MS = 2_000;
/** How long after a connection kill its effects (reconnect, retried commands) may show, ms. */
const RECONNECT_GRACE_MS = 1_000;
/** Slots moved by one migration. */
const MIGRATED_SLOTS = 200;

export interface ChaosCluster {
  readonly startupNodes: { host: string; port: number }[];
  faults(options: ChaosOptions, storm: Storm): ServerFaultSet;
  stop(): Promise<void>;
}

export async function startChaosCluster(): Promise<ChaosCluster> {
  const cluster = await LocalCluster.start({
    masters: MASTERS,
    replicasPerMaster: REPLICAS_PER_MASTER,
    nodeTimeoutMs: NODE_TIMEOUT_MS,
  });
  const nodes = new ClusterNodes(cluster);
  return {
    startupNodes: cluster.startupNodes,
    faults: (options, storm) => new ClusterFaults(options, storm, nodes),
    stop: () => nodes.stop(),
  };
}

/**
 * The cluster's nodes by port. LocalCluster kills nodes but does not start them again: a node
 * killed here is started again by this class, on its port with its directory and nodes.conf,
 * and this class stops it at the end.
 */
class ClusterNodes {
  private readonly restarted = new Map<number, ChildProcess>();
  private readonly down = new Set<number>();

  constructor(readonly cluster: LocalCluster) {}

  get ports(): number[] {
    return this.cluster.nodes.map((node) => node.port).filter((port) => !this.down.has(port));
  }

  /** A running node's view of the cluster. */
  topology() {
    return this.cluster.topology(this.ports[0]);
  }

  async kill(port: number): Promise<void> {
    this.down.add(port);
    const child = this.restarted.get(port);
    if (child === undefined) {
      await this.cluster.kill(this.node(port));
      return;
    }
    this.restarted.delete(port);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** Starts a killed node again with the arguments LocalCluster gave it. */
  async restart(port: number): Promise<void> {
    const node = this.node(port);
    this.restarted.set(
      port,
      spawn('redis-server', redisServerArgs(node, NODE_TIMEOUT_MS), {
        stdio: 'ignore',
      }),
    );
    this.down.delete(port);
    await waitUntil(
      async () => (await this.cluster.command(port, 'PING').catch(() => '')) === 'PONG',
      10_000,
      50,
    );
  }

  async stop(): Promise<void> {
    for (const port of [...this.restarted.keys()]) await this.kill(port);
    await this.cluster.stop();
  }

  private node(port: number): ClusterNodeProcess {
    const node = this.cluster.nodes.find((candidate) => candidate.port === port);
    if (node === undefined) throw new Error(`no node on port ${port}`);
    return node;
  }
}

class ClusterFaults implements ServerFaultSet {
  readonly inject = {
    'client-kill': (round: number) => this.killConnections(round),
    pause: (round: number) => this.pause(round),
    'master-kill': () => this.killMaster(),
    migrate: () => this.migrate(),
  };

  constructor(
    private readonly options: ChaosOptions,
    private readonly storm: Storm,
    private readonly nodes: ClusterNodes,
  ) {}

  async close(): Promise<void> {}

  /**
   * Even rounds: every connection of one busy worker on every node, by id. Odd rounds: every
   * subscriber connection on every node (CLIENT KILL TYPE pubsub).
   */
  private async killConnections(round: number): Promise<ServerFault | undefined> {
    const from = now();
    const to = from + this.options.storeTimeoutMs + RECONNECT_GRACE_MS;
    const ports = this.nodes.ports;
    if (round % 2 === 1) {
      let killed = 0;
      for (const port of ports) {
        killed += Number(
          await this.nodes.cluster.command(port, 'CLIENT', 'KILL', 'TYPE', 'pubsub'),
        );
      }
      if (killed > 0) {
        return { kind: 'client-kill', from, to, detail: `TYPE pubsub on every node: ${killed}` };
      }
    }
    const slot = this.storm.busySlot();
    const worker = slot === undefined ? undefined : this.storm.workerOf(slot);
    if (slot === undefined || worker === undefined) return undefined;
    const name = workerName(slot, worker.pid);
    let killed = 0;
    for (const port of ports) {
      const list = String(await this.nodes.cluster.command(port, 'CLIENT', 'LIST'));
      for (const line of list.split('\n')) {
        const id = line.includes(` name=${name} `) ? /^id=(\d+)/.exec(line)?.[1] : undefined;
        if (id === undefined) continue;
        await this.nodes.cluster.command(port, 'CLIENT', 'KILL', 'ID', id).catch(() => 0);
        killed++;
      }
    }
    if (killed === 0) return undefined;
    return {
      kind: 'client-kill',
      from,
      to,
      pid: worker.pid,
      detail: `${killed} connections of worker ${slot} (pid ${worker.pid}) on ${ports.length} nodes`,
    };
  }

  /** CLIENT PAUSE on every master, alternately WRITE and ALL. */
  private async pause(round: number): Promise<ServerFault> {
    const mode = round % 2 === 0 ? 'WRITE' : 'ALL';
    const from = now();
    const masters = (await this.nodes.topology()).filter(
      (view) => view.role === 'master' && !view.failed && view.slots.length > 0,
    );
    await Promise.all(
      masters.map((view) =>
        this.nodes.cluster.command(
          view.port,
          'CLIENT',
          'PAUSE',
          String(this.options.pauseMs),
          mode,
        ),
      ),
    );
    await sleep(this.options.pauseMs);
    return {
      kind: 'pause',
      from,
      to: from + this.options.pauseMs + this.options.storeTimeoutMs,
      detail: `CLIENT PAUSE ${this.options.pauseMs} ${mode} on ${masters.length} masters`,
    };
  }

  /**
   * SIGKILL of a master that has a replica up: its replica takes over after
   * `cluster-node-timeout` and an election. Once the cluster is whole again the killed node is
   * started again and rejoins as a replica of its successor.
   */
  private async killMaster(): Promise<ServerFault | undefined> {
    const views = await this.nodes.topology();
    const candidates = views.filter(
      (view) =>
        view.role === 'master' &&
        !view.failed &&
        view.slots.length > 0 &&
        views.some((replica) => replica.masterId === view.id && !replica.failed),
    );
    const victim = candidates[Math.floor(Math.random() * candidates.length)];
    if (victim === undefined) return undefined;
    const from = now();
    await this.nodes.kill(victim.port);
    await this.waitForMasters(false, victim.id);
    const failedOver = now();
    await this.nodes.restart(victim.port);
    await this.waitForMasters(true);
    const rejoined = now();
    return {
      kind: 'master-kill',
      from,
      // Leases in its slots could not be renewed from the kill to the failover.
      to: failedOver + this.options.leaseMs + this.options.storeTimeoutMs,
      slots: victim.slots,
      detail: `master :${victim.port} SIGKILLed (${slotsText(victim.slots)}), failed over in ${Math.round(failedOver - from)} ms, rejoined as a replica ${Math.round(rejoined - failedOver)} ms later`,
    };
  }

  /** `redis-cli --cluster reshard`: slots of one master to another, keys and all, under load. */
  private async migrate(): Promise<ServerFault | undefined> {
    const masters = (await this.nodes.topology()).filter(
      (view) => view.role === 'master' && !view.failed && view.slots.length > 0,
    );
    const source = masters[Math.floor(Math.random() * masters.length)];
    const target = masters.find((view) => view !== source);
    if (source === undefined || target === undefined) return undefined;
    const from = now();
    let lastError: unknown;
    // Right after a failover the nodes may not agree on the configuration yet: redis-cli refuses.
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        await run(
          'redis-cli',
          [
            '--cluster',
            'reshard',
            `127.0.0.1:${source.port}`,
            '--cluster-from',
            source.id,
            '--cluster-to',
            target.id,
            '--cluster-slots',
            String(MIGRATED_SLOTS),
            '--cluster-yes',
          ],
          { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 },
        );
        const done = now();
        return {
          kind: 'migrate',
          from,
          to: done + this.options.leaseMs + this.options.storeTimeoutMs,
          detail: `${MIGRATED_SLOTS} slots :${source.port} -> :${target.port} in ${Math.round(done - from)} ms`,
        };
      } catch (error) {
        lastError = error;
        await sleep(500);
      }
    }
    throw lastError;
  }

  /**
   * Until every slot is served by a healthy master (and, with `replicas`, each has a replica);
   * with `replaced`, until no slot is served by that node any more (its replica took over: the
   * other nodes see a killed master as healthy until `cluster-node-timeout` has passed).
   */
  private async waitForMasters(replicas: boolean, replaced?: string): Promise<void> {
    await waitUntil(
      async () => {
        for (const port of this.nodes.ports) {
          const info = String(
            await this.nodes.cluster.command(port, 'CLUSTER', 'INFO').catch(() => ''),
          );
          if (!info.includes('cluster_state:ok')) return false;
        }
        const views = await this.nodes.topology().catch(() => []);
        const masters = views.filter(
          (view) => view.role === 'master' && !view.failed && view.slots.length > 0,
        );
        if (masters.length !== MASTERS) return false;
        if (replaced !== undefined && masters.some((view) => view.id === replaced)) return false;
        if (!replicas) return true;
        return masters.every((master) =>
          views.some((view) => view.masterId === master.id && !view.failed),
        );
      },
      60_000,
      100,
    );
  }
}

function slotsText(slots: readonly (readonly [number, number])[]): string {
  return `slots ${slots.map(([from, to]) => (from === to ? `${from}` : `${from}-${to}`)).join(',')}`;
}
