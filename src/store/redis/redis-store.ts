import { setMaxListeners } from 'node:events';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { Lock } from 'redlock';
import { newLeaseToken } from '../lease-token.js';
import {
  type EntryState,
  isLeaseToken,
  type KeyListener,
  type Lease,
  type Store,
  StoreDataError,
  type Subscription,
} from '../store.js';
import { CLOSABLE_CONNECTION_OPTIONS, closeCluster, closeConnection } from './close-connection.js';
import { connectToNode } from './cluster-nodes.js';
import { clusterOperation } from './cluster-operation.js';
import { ClusterSubscriber } from './cluster-subscriber.js';
import type { RedisConnection as RedisClient } from './connection.js';
import { defineScript, type ScriptCaller } from './define-script.js';
import { keySlot } from './key-slot.js';
import { driftOf, LeaseClaimer } from './lease-claim.js';
import { ReplicaWaiter } from './replica-wait.js';
import { completeLua } from './scripts/complete.js';
import { fenceLua } from './scripts/fence.js';
import { forgetLua } from './scripts/forget.js';
import { readLua } from './scripts/read.js';
import { releaseLua } from './scripts/release.js';
import { renewLua } from './scripts/renew.js';

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions {
  /** The user's client. The store never sends commands on it: it opens its own connections from it. */
  readonly redis: RedisClient;
  /** Upper bound on any one Redis command, ms; past it the command fails as unreachable. */
  readonly commandTimeoutMs: number;
}

/**
 * The Redis store: one key per idempotency key (lease token, then record), a fence counter and
 * a pub/sub channel beside it in the same hash slot.
 *
 * It opens connections of its own from the user's client with `duplicate()`: one for commands
 * (auto-pipelined, RESP2, every command bounded by `commandTimeoutMs`) and one for
 * subscriptions. So a default-configured client handed in by a user still fails fast when Redis
 * is down instead of queueing commands for minutes, and the user's own connection is untouched.
 *
 * On a Redis Cluster the command connection is a duplicate of the user's `Cluster`, every
 * operation is bounded as a whole (the cluster client queues and retries around failovers on
 * its own), and subscriptions are sharded: {@link ClusterSubscriber} keeps one connection per
 * master and moves each channel with its slot.
 */
export class RedisStore implements Store {
  private readonly commands: RedisClient;
  /** The subscriber connection on one server; undefined on a cluster. */
  private readonly subscriber: Redis | undefined;
  /** Sharded subscriptions on a cluster; undefined on one server. */
  private readonly shards: ClusterSubscriber | undefined;
  private readonly cluster: boolean;
  /** Bound on a whole store operation on a cluster, ms (see `clusterOperation`). */
  private readonly operationTimeoutMs: number;
  private readonly publishCommand: 'PUBLISH' | 'SPUBLISH';
  private readonly claimer: LeaseClaimer;
  private readonly replicaWaiter: ReplicaWaiter;
  private readonly channels = new Map<string, ChannelEntry>();
  private subscriberReadyBefore = false;

  private readonly completeScript: ScriptCaller<
    [string, string],
    [string, Uint8Array, number, string],
    number
  >;
  private readonly releaseScript: ScriptCaller<
    [string, string],
    [string, Uint8Array, string],
    number
  >;
  private readonly renewScript: ScriptCaller<
    [string, string],
    [string, number, Uint8Array, string],
    number
  >;
  private readonly readScript: ScriptCaller<[string], [], [0] | [1, Buffer, number] | [2]>;
  private readonly fenceScript: ScriptCaller<[string, string], [string, number], number>;
  private readonly forgetScript: ScriptCaller<[string], [], 0 | 1 | 2>;
  /**
   * The user's client's `keyPrefix`, which ioredis puts before every key of a command, the
   * channel a script publishes to included, but not before the channels of SUBSCRIBE.
   */
  private readonly channelPrefix: string;
  /** Times a command connection closed; see countConnectionDrops. */
  private connectionDrops = 0;
  /** Aborted by close(): operations still out fail at once instead of waiting on timers. */
  private readonly lifetime = new AbortController();
  private closing: Promise<void> | undefined;

  constructor(options: RedisStoreOptions) {
    const { redis, commandTimeoutMs } = options;
    this.cluster = 'isCluster' in redis && redis.isCluster === true;
    this.channelPrefix = redis.options.keyPrefix ?? '';
    this.operationTimeoutMs = commandTimeoutMs;
    this.publishCommand = this.cluster ? 'SPUBLISH' : 'PUBLISH';
    // Every cluster operation waiting on a timer listens to it, however many are out.
    setMaxListeners(0, this.lifetime.signal);
    const connectionOptions: RedisOptions = {
      commandTimeout: commandTimeoutMs,
      connectTimeout: commandTimeoutMs,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
      autoResubscribe: true,
      ...CLOSABLE_CONNECTION_OPTIONS,
    };
    if (this.cluster) {
      const cluster = redis as Cluster;
      const { enableOfflineQueue: _queue, ...nodeOptions } = connectionOptions;
      const commands = cluster.duplicate(undefined, {
        ...cluster.options,
        enableAutoPipelining: true,
        // Sharded pub/sub is the store's own (ClusterSubscriber), never this connection's.
        shardedSubscribers: false,
        redisOptions: { ...cluster.options.redisOptions, ...nodeOptions, protocol: 2 },
      } as Parameters<Cluster['duplicate']>[1]);
      this.commands = commands;
      this.subscriber = undefined;
      this.shards = new ClusterSubscriber(commands, connectionOptions, {
        message: (channel, message) => this.dispatch(channel, message),
        resync: (channel) => this.resync(channel),
      });
      this.replicaWaiter = new ReplicaWaiter(
        (key) => {
          const master = commands.slots[keySlot(key)]?.[0];
          if (master === undefined) throw new Error(`No known master serves the slot of ${key}`);
          return master;
        },
        (master) => connectToNode(commands, master, { ...connectionOptions, retryStrategy: null }),
      );
    } else {
      const single = redis as Redis;
      this.commands = single.duplicate({
        ...connectionOptions,
        enableAutoPipelining: true,
        protocol: 2,
      });
      const subscriber = single.duplicate({ ...connectionOptions, protocol: 2 });
      subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) =>
        this.dispatch(channel.toString(), message),
      );
      subscriber.on('error', noop);
      subscriber.on('ready', () => this.onSubscriberReady());
      this.subscriber = subscriber;
      this.shards = undefined;
      this.replicaWaiter = new ReplicaWaiter(
        () => 'master',
        () => {
          const connection = single.duplicate({ ...connectionOptions, protocol: 2 });
          connection.on('error', noop);
          return connection;
        },
      );
    }
    // Errors surface as rejected commands; without a listener ioredis would log each one.
    this.commands.on('error', noop);
    this.countConnectionDrops();

    this.claimer = new LeaseClaimer(this.commands);
    this.completeScript = defineScript(this.commands, { lua: completeLua, keys: 2 });
    this.releaseScript = defineScript(this.commands, { lua: releaseLua, keys: 2 });
    this.renewScript = defineScript(this.commands, { lua: renewLua, keys: 2 });
    this.readScript = defineScript(this.commands, { lua: readLua, keys: 1 });
    this.fenceScript = defineScript(this.commands, { lua: fenceLua, keys: 2 });
    this.forgetScript = defineScript(this.commands, { lua: forgetLua, keys: 1 });
  }

  async claim(key: string, leaseMs: number): Promise<Lease | null> {
    const start = Date.now();
    const drops = this.connectionDrops;
    const token = newLeaseToken();
    const lock = await (this.cluster
      ? this.bounded('claim', () => this.claimer.claim(key, leaseMs, token))
      : this.claimer.claim(key, leaseMs, token));
    if (lock !== null) return new RedisLease(this, key, lock);
    // A connection dropped while the claim was out: ioredis sends unanswered commands again after
    // reconnecting, so the "held" may be the second copy finding the first one's lease. Without
    // this check the caller would wait out its own lease.
    if (this.connectionDrops === drops) return null;
    const held = await this.bounded('read', () => this.commands.get(key)).catch(translate);
    if (held !== token) return null;
    return new RedisLease(this, key, this.claimer.adopt(key, token, leaseMs, start));
  }

  async read(key: string): Promise<EntryState> {
    const reply = await (this.cluster
      ? this.bounded('read', () => this.readScript([key], []))
      : this.readScript([key], [])
    ).catch(translate);
    if (reply[0] === 0) return ABSENT;
    if (reply[0] === 2) throw new StoreDataError(`Key ${key} holds a Redis type other than string`);
    const [, bytes, ttlMs] = reply;
    if (isLeaseToken(bytes)) return { state: 'running', ttlMs };
    return { state: 'completed', bytes, ttlMs };
  }

  async subscribe(key: string, listener: KeyListener): Promise<Subscription> {
    if (this.closing !== undefined) throw new Error('The store is closed');
    const channel = this.channelPrefix + channelOf(key);
    let entry = this.channels.get(channel);
    if (entry === undefined) {
      const created: ChannelEntry = {
        listeners: new Set(),
        active:
          this.shards !== undefined
            ? this.bounded('subscribe', () => (this.shards as ClusterSubscriber).subscribe(channel))
            : (this.subscriber as Redis).subscribe(channel),
      };
      entry = created;
      this.channels.set(channel, created);
      created.active.catch(() => {
        if (this.channels.get(channel) === created) this.channels.delete(channel);
      });
    }
    entry.listeners.add(listener);
    try {
      await entry.active;
    } catch (err) {
      entry.listeners.delete(listener);
      throw err;
    }
    let active = true;
    const owner = entry;
    return {
      unsubscribe: () => {
        if (!active) return;
        active = false;
        owner.listeners.delete(listener);
        // Once closed, channels is empty: no UNSUBSCRIBE is sent on a closed connection.
        if (owner.listeners.size > 0 || this.channels.get(channel) !== owner) return;
        this.channels.delete(channel);
        // Commands on one connection run in order, so a SUBSCRIBE sent after this one wins.
        if (this.shards !== undefined) this.shards.unsubscribe(channel);
        else this.subscriber?.unsubscribe(channel).catch(noop);
      },
    };
  }

  async forget(key: string): Promise<'deleted' | 'absent' | 'running'> {
    const reply = await this.bounded('forget', () => this.forgetScript([key], [])).catch(translate);
    return reply === 0 ? 'absent' : reply === 1 ? 'deleted' : 'running';
  }

  async waitForReplicas(key: string, replicas: number, timeoutMs: number): Promise<number> {
    // On connections of its own: see ReplicaWaiter for why, and how it still covers the record.
    return this.bounded('WAIT', () => this.replicaWaiter.wait(key, replicas, timeoutMs));
  }

  /**
   * Closes every connection the store opened, whatever state it is in (ready, reconnecting to a
   * Redis that is down, waiting on a hung one, following a failover), and resolves once no
   * socket or timer of the store is left. Commands still out are rejected. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.closeConnections();
    return this.closing;
  }

  private async closeConnections(): Promise<void> {
    this.lifetime.abort();
    this.channels.clear();
    // Bounds each wait for a connection to end; each normally ends within a few ticks.
    const boundMs = this.operationTimeoutMs;
    await Promise.all([
      this.cluster
        ? closeCluster(this.commands as Cluster, boundMs)
        : closeConnection(this.commands as Redis, boundMs),
      this.subscriber === undefined ? undefined : closeConnection(this.subscriber, boundMs),
      this.shards?.close(boundMs),
      this.replicaWaiter.close(boundMs),
    ]);
  }

  /** @internal */
  completeRecord(key: string, token: string, record: Uint8Array, ttlMs: number): Promise<boolean> {
    const completed = this.cluster
      ? this.bounded('complete', () =>
          this.completeScript([key, channelOf(key)], [token, record, ttlMs, this.publishCommand]),
        )
      : this.completeScript([key, channelOf(key)], [token, record, ttlMs, this.publishCommand]);
    return completed.then((reply) => reply === 1).catch(translate);
  }

  /** @internal True when `key` holds exactly `record` (records are unique to an execution). */
  holdsRecord(key: string, record: Uint8Array): Promise<boolean> {
    return this.bounded('read', () => this.commands.getBuffer(key)).then(
      (stored) => stored !== null && Buffer.compare(stored, record) === 0,
      translate,
    );
  }

  /** @internal */
  releaseLease(key: string, token: string, notice: Uint8Array): Promise<boolean> {
    return this.bounded('release', () =>
      this.releaseScript([key, channelOf(key)], [token, notice, this.publishCommand]),
    )
      .then((reply) => reply === 1)
      .catch(translate);
  }

  /** @internal */
  nextFencingToken(key: string, token: string, fenceTtlMs: number): Promise<number | null> {
    return this.bounded('fence', () => this.fenceScript([key, `${key}:fence`], [token, fenceTtlMs]))
      .then((reply) => {
        if (reply === FENCE_NOT_A_NUMBER) {
          throw new StoreDataError(`The fence counter of ${key} does not hold a number`);
        }
        return reply < 0 ? null : reply;
      })
      .catch(translate);
  }

  /** @internal */
  renewLease(key: string, token: string, leaseMs: number, notice: Uint8Array): Promise<boolean> {
    return this.bounded('renew', () =>
      this.renewScript([key, channelOf(key)], [token, leaseMs, notice, this.publishCommand]),
    )
      .then((reply) => reply === 1)
      .catch(translate);
  }

  /**
   * Counts the drops of the command connections (each cluster node's included): a command sent
   * before a drop may run twice, its first reply lost and the second reporting on the first's
   * effect (ioredis re-sends unanswered commands after reconnecting).
   */
  private countConnectionDrops(): void {
    const dropped = () => {
      this.connectionDrops++;
    };
    if (!this.cluster) {
      this.commands.on('close', dropped);
      return;
    }
    const cluster = this.commands as Cluster;
    cluster.on('+node', (node: Redis) => node.on('close', dropped));
    for (const node of cluster.nodes()) node.on('close', dropped);
  }

  /**
   * Runs `operation`. On a cluster it is retried on redirections and bounded as a whole by the
   * store's timeout (see `clusterOperation`); on one server the connection's own command
   * timeout bounds it.
   */
  private bounded<T>(what: string, operation: () => Promise<T>): Promise<T> {
    if (!this.cluster) return operation();
    return clusterOperation(
      this.commands as Cluster,
      operation,
      this.operationTimeoutMs,
      what,
      this.lifetime.signal,
    );
  }

  private dispatch(channel: string, message: Buffer): void {
    const entry = this.channels.get(channel);
    if (entry === undefined) return;
    for (const listener of entry.listeners) listener.onMessage(message);
  }

  /** A channel's subscription was made again on a cluster: its listeners re-read their key. */
  private resync(channel: string): void {
    const entry = this.channels.get(channel);
    if (entry === undefined) return;
    for (const listener of entry.listeners) listener.onResync();
  }

  /**
   * ioredis resubscribes by itself after a reconnect, but whatever was published while the
   * connection was down is gone: every listener re-reads its key.
   */
  private onSubscriberReady(): void {
    if (!this.subscriberReadyBefore) {
      this.subscriberReadyBefore = true;
      return;
    }
    for (const entry of this.channels.values()) {
      for (const listener of entry.listeners) listener.onResync();
    }
  }
}

interface ChannelEntry {
  readonly listeners: Set<KeyListener>;
  readonly active: Promise<unknown>;
}

class RedisLease implements Lease {
  private readonly token: string;
  validUntil: number;

  constructor(
    private readonly store: RedisStore,
    private readonly key: string,
    lock: Lock,
  ) {
    this.token = lock.value;
    this.validUntil = lock.expiration;
  }

  async extend(leaseMs: number, notice: Uint8Array): Promise<boolean> {
    const start = Date.now();
    const renewed = await this.store.renewLease(this.key, this.token, leaseMs, notice);
    if (renewed) this.validUntil = start + leaseMs - driftOf(leaseMs);
    return renewed;
  }

  complete(record: Uint8Array, ttlMs: number): Promise<boolean> {
    return this.store.completeRecord(this.key, this.token, record, ttlMs).then((stored) =>
      // No token found need not mean a lost lease: an earlier copy of this completion may have
      // replaced the token with this very record, its reply lost — a retry after a timeout or
      // failover, or ioredis sending the unanswered script again after a reconnect (the chaos
      // harness caught that one). Records are unique to an execution, so equal bytes are ours.
      stored ? true : this.store.holdsRecord(this.key, record),
    );
  }

  release(notice: Uint8Array): Promise<boolean> {
    return this.store.releaseLease(this.key, this.token, notice);
  }

  fencingToken(fenceTtlMs: number): Promise<number | null> {
    return this.store.nextFencingToken(this.key, this.token, fenceTtlMs);
  }
}

/** The fence script's reply when the counter holds something else than a number. */
const FENCE_NOT_A_NUMBER = -2;

function translate(err: unknown): never {
  if (err instanceof Error && err.message.startsWith('WRONGTYPE')) {
    throw new StoreDataError(err.message, { cause: err });
  }
  throw err;
}

function channelOf(key: string): string {
  return `${key}:done`;
}

const ABSENT: EntryState = { state: 'absent' };

function noop(): void {}
