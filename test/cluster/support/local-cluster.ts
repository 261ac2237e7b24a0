// A Redis Cluster of our own for one test file: `redis-server --cluster-enabled yes` processes on
// free ports, joined with `redis-cli --cluster create`, stopped by pid, temp dirs removed.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, type ClusterOptions, Redis } from 'ioredis';
import { answersPing, freePort, waitUntil } from '../../helpers/redis.js';

const run = promisify(execFile);

/** One `redis-server` of the cluster. */
export interface ClusterNodeProcess {
  readonly port: number;
  readonly busPort: number;
  readonly dir: string;
  readonly process: ChildProcess;
  /** Its cluster node id (40 hex characters), known once the cluster is created. */
  id: string;
}

/** What `CLUSTER NODES` says about one node. */
export interface NodeView {
  readonly id: string;
  readonly port: number;
  readonly role: 'master' | 'replica';
  readonly masterId: string | null;
  readonly failed: boolean;
  /** Slot ranges served, inclusive, for a master. */
  readonly slots: readonly (readonly [number, number])[];
}

export interface LocalClusterOptions {
  /** Masters (3 unless given). */
  readonly masters?: number;
  /** Replicas per master (0 unless given). */
  readonly replicasPerMaster?: number;
  /** `cluster-node-timeout`, ms: a failed master is replaced after about this plus an election. */
  readonly nodeTimeoutMs?: number;
}

/** Every cluster a test process started, so a crashed test still leaves no server behind. */
const live = new Set<LocalCluster>();
process.once('exit', () => {
  for (const cluster of live) cluster.killAllNow();
});

export class LocalCluster {
  private readonly stopped = new Set<ClusterNodeProcess>();

  private constructor(
    readonly nodes: readonly ClusterNodeProcess[],
    private readonly root: string,
  ) {}

  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const masters = options.masters ?? 3;
    const replicas = options.replicasPerMaster ?? 0;
    const nodeTimeoutMs = options.nodeTimeoutMs ?? 2_000;
    const root = mkdtempSync(join(tmpdir(), 'idem-cluster-'));
    const nodes: ClusterNodeProcess[] = [];
    const cluster = new LocalCluster(nodes, root);
    live.add(cluster);
    try {
      for (let i = 0; i < masters * (1 + replicas); i++) {
        nodes.push(await startNode(root, nodeTimeoutMs));
      }
      await Promise.all(nodes.map((node) => waitForPing(node.port)));
      await run(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...nodes.map((node) => `127.0.0.1:${node.port}`),
          '--cluster-replicas',
          String(replicas),
          '--cluster-yes',
        ],
        { timeout: 60_000 },
      );
      await cluster.waitUntilHealthy(masters, replicas);
      const views = await cluster.topology();
      for (const node of nodes) node.id = views.find((view) => view.port === node.port)?.id ?? '';
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  /** Where clients connect: one node is enough, ioredis discovers the rest. */
  get startupNodes(): { host: string; port: number }[] {
    return this.running().map((node) => ({ host: '127.0.0.1', port: node.port }));
  }

  /** A default-configured ioredis Cluster client, as a user would hand it to the executor. */
  client(options: Omit<ClusterOptions, 'redisOptions'> = {}): Cluster {
    return new Cluster(this.startupNodes, options);
  }

  /** A plain connection to one node, for admin commands. */
  admin(port: number): Redis {
    const redis = new Redis({
      host: '127.0.0.1',
      port,
      maxRetriesPerRequest: 1,
      lazyConnect: false,
    });
    redis.on('error', () => {});
    return redis;
  }

  /** Runs one command on one node and returns its reply. */
  async command(port: number, ...args: (string | number)[]): Promise<unknown> {
    const redis = this.admin(port);
    try {
      return await redis.call(String(args[0]), ...args.slice(1));
    } finally {
      redis.disconnect();
    }
  }

  /** `key` as a replica on `port` holds it (READONLY, then GET), as bytes. */
  async readFromReplica(port: number, key: string): Promise<Buffer | null> {
    const redis = this.admin(port);
    try {
      await redis.call('READONLY');
      return await redis.getBuffer(key);
    } finally {
      redis.disconnect();
    }
  }

  /** The nodes still running. */
  running(): ClusterNodeProcess[] {
    return this.nodes.filter((node) => !this.stopped.has(node));
  }

  /** The cluster as one running node sees it (`CLUSTER NODES`). */
  async topology(port = this.running()[0]?.port): Promise<NodeView[]> {
    if (port === undefined) throw new Error('no node is running');
    const text = String(await this.command(port, 'CLUSTER', 'NODES'));
    return text
      .trim()
      .split('\n')
      .map((line) => {
        const [id, address, flags, master, , , , , ...slots] = line.split(' ');
        const flagList = (flags ?? '').split(',');
        return {
          id: id ?? '',
          port: Number((address ?? '').split('@')[0]?.split(':')[1]),
          role: flagList.includes('master') ? 'master' : 'replica',
          masterId: master === '-' || master === undefined ? null : master,
          failed: flagList.includes('fail') || flagList.includes('fail?'),
          slots: slots
            .filter((range) => !range.startsWith('['))
            .map((range) => {
              const [from, to] = range.split('-').map(Number);
              return [from as number, (to ?? from) as number] as const;
            }),
        } satisfies NodeView;
      });
  }

  /** The running master serving `slot`, as a running node sees it. */
  async masterOf(slot: number): Promise<ClusterNodeProcess> {
    const views = await this.topology();
    const view = views.find(
      (candidate) =>
        candidate.role === 'master' &&
        !candidate.failed &&
        candidate.slots.some(([from, to]) => slot >= from && slot <= to),
    );
    const node = this.nodes.find((candidate) => candidate.port === view?.port);
    if (node === undefined) throw new Error(`no master serves slot ${slot}`);
    return node;
  }

  /** The replicas of the master on `port`. */
  async replicasOf(port: number): Promise<ClusterNodeProcess[]> {
    const views = await this.topology();
    const masterId = views.find((view) => view.port === port)?.id;
    const ports = new Set(
      views.filter((view) => view.masterId === masterId).map((view) => view.port),
    );
    return this.nodes.filter((node) => ports.has(node.port));
  }

  /** SIGKILLs one node by pid and waits for the process to be gone. */
  async kill(node: ClusterNodeProcess): Promise<void> {
    this.stopped.add(node);
    await killProcess(node.process);
  }

  /**
   * Waits until every running node reports `cluster_state:ok`, knows `masters` healthy masters
   * covering every slot, and (with replicas) every replica's link to its master is up.
   */
  async waitUntilHealthy(
    masters: number,
    replicasPerMaster = 0,
    timeoutMs = 30_000,
  ): Promise<void> {
    await waitUntil(
      async () => {
        for (const node of this.running()) {
          const info = String(await this.command(node.port, 'CLUSTER', 'INFO').catch(() => ''));
          if (!info.includes('cluster_state:ok')) return false;
          const views = await this.topology(node.port).catch(() => []);
          const healthyMasters = views.filter(
            (view) => view.role === 'master' && !view.failed && view.slots.length > 0,
          );
          if (healthyMasters.length !== masters) return false;
          if (
            views.filter((view) => view.role === 'replica' && !view.failed).length <
            masters * replicasPerMaster
          ) {
            return false;
          }
          const replication = String(await this.command(node.port, 'INFO', 'replication'));
          if (
            replication.includes('role:slave') &&
            !replication.includes('master_link_status:up')
          ) {
            return false;
          }
        }
        return true;
      },
      timeoutMs,
      100,
    );
  }

  /** Kills every node by pid and removes the temp dir. */
  async stop(): Promise<void> {
    live.delete(this);
    await Promise.all(this.nodes.map((node) => this.kill(node)));
    rmSync(this.root, { recursive: true, force: true });
  }

  /** For the process exit hook: synchronous, best effort. */
  killAllNow(): void {
    for (const node of this.nodes) {
      if (node.process.exitCode === null && node.process.signalCode === null) {
        node.process.kill('SIGKILL');
      }
    }
    rmSync(this.root, { recursive: true, force: true });
  }
}

/**
 * The arguments a node of the cluster runs with (also used to start a killed node again on its
 * own port, bus port and folder).
 */
export function redisServerArgs(
  node: Pick<ClusterNodeProcess, 'port' | 'busPort' | 'dir'>,
  nodeTimeoutMs: number,
): string[] {
  const { port, busPort, dir } = node;
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--cluster-enabled',
    'yes',
    '--cluster-port',
    String(busPort),
    '--cluster-config-file',
    join(dir, 'nodes.conf'),
    '--cluster-node-timeout',
    String(nodeTimeoutMs),
    // A replica may take over however long it was cut off (tests kill masters at will).
    '--cluster-replica-validity-factor',
    '0',
    '--cluster-allow-replica-migration',
    'no',
    '--dir',
    dir,
    '--logfile',
    join(dir, 'redis.log'),
    '--save',
    '',
    '--appendonly',
    'no',
    '--repl-diskless-sync',
    'yes',
    '--repl-diskless-sync-delay',
    '0',
  ];
}

async function startNode(root: string, nodeTimeoutMs: number): Promise<ClusterNodeProcess> {
  const port = await freePort();
  let busPort = await freePort();
  while (busPort === port) busPort = await freePort();
  const dir = mkdtempSync(join(root, `node-${port}-`));
  const child = spawn('redis-server', redisServerArgs({ port, busPort, dir }, nodeTimeoutMs), {
    stdio: 'ignore',
  });
  return { port, busPort, dir, process: child, id: '' };
}

async function waitForPing(port: number): Promise<void> {
  await waitUntil(() => answersPing(port), 10_000, 50);
}

async function killProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}
