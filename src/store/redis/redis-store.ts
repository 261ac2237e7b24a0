import { setMaxListeners } from 'node:events';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
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
import { channelOf } from './key-layout.js';
import { keySlot } from './key-slot.js';
import { type CompletionMode, RedisLeases, translate } from './redis-lease.js';
import { ReplicaWaiter } from './replica-wait.js';
import { ForgetReply, forgetScript } from './scripts/forget.js';
import { ReadReply, readScript } from './scripts/read.js';

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
  private readonly leases: RedisLeases;
  private readonly replicaWaiter: ReplicaWaiter;
  private readonly channels = new Map<string, ChannelEntry>();
  private subscriberReadyBefore = false;
  /** A retry of a failed resubscription (one server), cleared by close(). */
  private resubscribeTimer: NodeJS.Timeout | undefined;
  private readonly readScript: ScriptCaller<[string], [], [0] | [1, Buffer, number] | [2]>;
  private readonly forgetScript: ScriptCaller<[string], [], 0 | 1 | 2>;
  /**
   * The user's client's `keyPrefix`, which ioredis puts before every key of a command, the
   * channel a script publishes to included, but not before the channels of SUBSCRIBE.
   */
  private readonly channelPrefix: string;
  /** Aborted by close(): operations still out fail at once instead of waiting on timers. */
  private readonly lifetime = new AbortController();
  private closing: Promise<void> | undefined;

  constructor(options: RedisStoreOptions) {
    const { redis, commandTimeoutMs } = options;
    this.cluster = 'isCluster' in redis && redis.isCluster === true;
    this.channelPrefix = redis.options.keyPrefix ?? '';
    this.operationTimeoutMs = commandTimeoutMs;
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
      // ioredis's own resubscription after a reconnect drops its promise: a SUBSCRIBE that then
      // times out (commandTimeout) is an unhandled rejection, which ends a default Node process
      // (found by the chaos harness, a pubsub kill during a partition). The store resubscribes
      // itself on 'ready', and handles the answer.
      const subscriber = single.duplicate({
        ...connectionOptions,
        autoResubscribe: false,
        protocol: 2,
      });
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

    this.leases = new RedisLeases({
      commands: this.commands,
      cluster: this.cluster,
      operationTimeoutMs: commandTimeoutMs,
      closed: this.lifetime.signal,
    });
    this.readScript = defineScript(this.commands, readScript);
    this.forgetScript = defineScript(this.commands, forgetScript);
  }

  /**
   * One round trip (`SET key token NX PX ms GET`): the lease, the record the key holds (a
   * replay), or null while a running lease holds the key.
   */
  claim(key: string, leaseMs: number): Promise<Lease | Uint8Array | null> {
    return this.leases.claim(key, leaseMs);
  }

  /** How completions are sent now: the complete script, or `SET … IFEQ` where the server has it. */
  get completionMode(): CompletionMode {
    return this.leases.completionMode;
  }

  async read(key: string): Promise<EntryState> {
    const reply = await (this.cluster
      ? this.bounded('read', () => this.readScript([key], []))
      : this.readScript([key], [])
    ).catch(translate);
    if (reply[0] === ReadReply.ABSENT) return ABSENT;
    if (reply[0] === ReadReply.OTHER_TYPE)
      throw new StoreDataError(`Key ${key} holds a Redis type other than string`);
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
        // A SUBSCRIBE that timed out may still land later (a partition that heals): undo it, in
        // order on the same connection, so no subscription outlives its listeners.
        if (this.shards === undefined && this.closing === undefined) {
          this.subscriber?.unsubscribe(channel).catch(noop);
        }
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
    return reply === ForgetReply.ABSENT
      ? 'absent'
      : reply === ForgetReply.DELETED
        ? 'deleted'
        : 'running';
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
    clearTimeout(this.resubscribeTimer);
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
   * After a reconnect the store subscribes its channels again (ioredis's own resubscription is
   * off: see the constructor), and since whatever was published while the connection was down
   * is gone, every listener re-reads its key. A resubscription that fails (times out) is tried
   * again while the connection stays up; meanwhile waiters still wake at their lease's expiry.
   */
  private onSubscriberReady(): void {
    if (!this.subscriberReadyBefore) {
      this.subscriberReadyBefore = true;
      return;
    }
    this.resubscribe();
  }

  private resubscribe(): void {
    clearTimeout(this.resubscribeTimer);
    this.resubscribeTimer = undefined;
    const subscriber = this.subscriber;
    const channels = [...this.channels.keys()];
    if (subscriber === undefined || channels.length === 0 || this.closing !== undefined) return;
    subscriber.subscribe(...channels).then(
      () => this.resyncAll(),
      () => {
        this.resyncAll();
        if (this.closing !== undefined || subscriber.status !== 'ready') return;
        this.resubscribeTimer = setTimeout(() => this.resubscribe(), RESUBSCRIBE_RETRY_MS);
      },
    );
  }

  private resyncAll(): void {
    for (const entry of this.channels.values()) {
      for (const listener of entry.listeners) listener.onResync();
    }
  }
}

interface ChannelEntry {
  readonly listeners: Set<KeyListener>;
  readonly active: Promise<unknown>;
}

const ABSENT: EntryState = { state: 'absent' };

/** How soon a failed resubscription after a reconnect is tried again, ms. */
const RESUBSCRIBE_RETRY_MS = 1_000;

function noop(): void {}
