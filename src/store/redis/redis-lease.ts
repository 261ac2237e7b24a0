import type { Cluster, Redis } from 'ioredis';
import Redlock, { Lock } from 'redlock';
import { monotonicNow } from '../../clock.js';
import { newLeaseToken } from '../lease-token.js';
import { isLeaseToken, type Lease, StoreDataError } from '../store.js';
import { clusterOperation } from './cluster-operation.js';
import type { RedisConnection as RedisClient } from './connection.js';
import { defineScript, type PublishCommand, type ScriptCaller } from './define-script.js';
import { channelOf, fenceKeyOf } from './key-layout.js';
import { CompleteReply, completeScript } from './scripts/complete.js';
import { FenceReply, fenceScript } from './scripts/fence.js';
import { ReleaseReply, releaseScript } from './scripts/release.js';
import { RenewReply, renewScript } from './scripts/renew.js';

/** What the lease side of the store needs from the store's command connection. */
export interface LeaseConnection {
  /** The store's command connection (auto-pipelined, RESP2, bounded commands). */
  readonly commands: RedisClient;
  /** True on a Redis Cluster: operations are bounded as a whole, and publishing is sharded. */
  readonly cluster: boolean;
  /** Bound on one operation on a cluster, ms (see `clusterOperation`). */
  readonly operationTimeoutMs: number;
  /** Aborted when the store closes: cluster operations still out fail at once. */
  readonly closed: AbortSignal;
}

/**
 * How a lease is completed. `script`: the complete script compares the token, writes the record
 * and publishes it, atomically. `ifeq`: `SET key record IFEQ token PX ttl` (Valkey ≥ 8.1,
 * Redis ≥ 8.4), then, only once the reply says it was stored, `PUBLISH` of the record: a stale
 * owner, whose SET is refused, never announces an outcome that was not stored.
 */
export type CompletionMode = 'script' | 'ifeq';

/**
 * The leases of the Redis store: claim, renew, complete, release and fencing tokens, each one
 * command or script on the record key, the token compared by Redis.
 *
 * The claim is `SET key token NX PX ms GET` (Redis ≥ 7.0): one round trip either takes the lease
 * or answers with what the key holds, so a replay needs no second read. redlock makes the
 * lease: its `Lock` (the token, and the expiry less redlock's clock-drift allowance) is what a
 * {@link RedisLease} holds and renews.
 */
export class RedisLeases {
  private readonly redlock: Redlock;
  private readonly publishCommand: PublishCommand;
  private readonly complete: ScriptCaller<
    [string, string],
    [string, Uint8Array, number, PublishCommand],
    number
  >;
  private readonly release: ScriptCaller<
    [string, string],
    [string, Uint8Array, PublishCommand],
    number
  >;
  private readonly renew: ScriptCaller<
    [string, string],
    [string, number, Uint8Array, PublishCommand],
    number
  >;
  private readonly fence: ScriptCaller<[string, string], [string, number], number>;
  /** False once the server refused `SET … NX GET` (before 7.0): SET NX and GET go together. */
  private setNxGet = true;
  /**
   * How completions are sent; `probe` until the first completion on a connection has tried
   * `SET … IFEQ` (a server without it refuses the syntax and changes nothing).
   */
  private completion: CompletionMode | 'probe';

  constructor(private readonly connection: LeaseConnection) {
    const { commands, cluster } = connection;
    this.redlock = new Redlock([commands as Redis], { retryCount: 0 });
    // redlock emits 'error' on every refused vote; without a listener that would throw.
    this.redlock.on('error', noop);
    this.publishCommand = cluster ? 'SPUBLISH' : 'PUBLISH';
    this.complete = defineScript(commands, completeScript);
    this.release = defineScript(commands, releaseScript);
    this.renew = defineScript(commands, renewScript);
    this.fence = defineScript(commands, fenceScript);
    // A cluster keeps the script: its masters are many, and may run different versions.
    this.completion = cluster ? 'script' : 'probe';
    if (!cluster) {
      // Detected once per connection: a reconnect may reach another server (a failover).
      (commands as Redis).on('ready', () => {
        this.completion = 'probe';
      });
    }
  }

  /**
   * How completions are sent (see {@link CompletionMode}); `script` until the first completion
   * on the current connection has found out.
   */
  get completionMode(): CompletionMode {
    return this.completion === 'ifeq' ? 'ifeq' : 'script';
  }

  /**
   * Takes a lease on `key` for `leaseMs`. Resolves with the lease; with the record the key holds
   * (a replay, in this same round trip); or null when a running lease holds it.
   */
  claim(key: string, leaseMs: number): Promise<RedisLease | Buffer | null> {
    const start = monotonicNow();
    const token = newLeaseToken();
    const answer = (held: Buffer | null): RedisLease | Buffer | null => {
      // A claim answered "held" by our own token was sent twice (ioredis sends unanswered
      // commands again after a reconnect): the first copy took the lease, and it is ours.
      if (held === null || isToken(held, token)) {
        return new RedisLease(this, key, this.lockOf(key, token, leaseMs, start));
      }
      return isLeaseToken(held) ? null : held;
    };
    if (this.connection.cluster) {
      return this.bounded('claim', () => this.sendClaim(key, token, leaseMs)).then(
        answer,
        translate,
      );
    }
    if (!this.setNxGet) return this.sendClaim(key, token, leaseMs).then(answer, translate);
    // The common case, one promise of ours on the command's.
    return (
      this.connection.commands.setBuffer(
        key,
        token,
        'PX',
        leaseMs,
        'NX',
        'GET',
      ) as Promise<Buffer | null>
    ).then(answer, (error: unknown) => {
      if (!isSyntaxError(error)) return translate(error);
      // Before Redis 7.0: nothing was set; claim again the older way.
      this.setNxGet = false;
      return this.claim(key, leaseMs);
    });
  }

  private sendClaim(key: string, token: string, leaseMs: number): Promise<Buffer | null> {
    const { commands } = this.connection;
    if (this.setNxGet) {
      return (
        commands.setBuffer(key, token, 'PX', leaseMs, 'NX', 'GET') as Promise<Buffer | null>
      ).catch((error: unknown) => {
        if (!isSyntaxError(error)) throw error;
        this.setNxGet = false;
        return this.sendClaim(key, token, leaseMs);
      });
    }
    // Before Redis 7.0: the claim and the read sent together, one round trip still.
    return Promise.all([
      commands.set(key, token, 'PX', leaseMs, 'NX'),
      commands.getBuffer(key),
    ]).then(([claimed, held]) => (claimed === 'OK' ? null : held));
  }

  /** @see RedisLease.complete */
  completeLease(key: string, token: string, record: Uint8Array, ttlMs: number): Promise<boolean> {
    const channel = channelOf(key);
    if (this.completion !== 'script') {
      const { commands } = this.connection;
      return (
        commands.call('SET', key, record as Buffer, 'IFEQ', token, 'PX', ttlMs) as Promise<
          string | null
        >
      ).then(
        (reply) => {
          this.completion = 'ifeq';
          if (reply !== 'OK') return this.holdsRecord(key, record, channel);
          this.announce(channel, record);
          return true;
        },
        (error: unknown) => {
          if (!isSyntaxError(error)) return translate(error);
          // No IFEQ here (the probe's answer, or a failover to an older server): the script.
          this.completion = 'script';
          return this.completeLease(key, token, record, ttlMs);
        },
      );
    }
    const args: [string, Uint8Array, number, PublishCommand] = [
      token,
      record,
      ttlMs,
      this.publishCommand,
    ];
    const completed = this.connection.cluster
      ? this.bounded('complete', () => this.complete([key, channel], args))
      : this.complete([key, channel], args);
    return completed.then(
      (reply) => reply === CompleteReply.STORED || this.holdsRecord(key, record, undefined),
      translate,
    );
  }

  /**
   * True when `key` holds exactly `record` (records are unique to an execution, so equal bytes
   * are ours). No token found need not mean a lost lease: an earlier copy of this completion may
   * have replaced the token with this very record, its reply lost — a retry after a timeout or
   * failover, or ioredis sending the unanswered command again after a reconnect (the chaos
   * harness caught that one). With IFEQ, the record is announced then, as it may not have been.
   */
  private holdsRecord(
    key: string,
    record: Uint8Array,
    channel: string | undefined,
  ): Promise<boolean> {
    return this.bounded('read', () => this.connection.commands.getBuffer(key)).then((stored) => {
      const ours = stored !== null && Buffer.compare(stored, record) === 0;
      if (ours && channel !== undefined) this.announce(channel, record);
      return ours;
    }, translate);
  }

  /**
   * Publishes a stored record to the key's waiters, after the SET that stored it. Not awaited:
   * the caller has its outcome; a waiter that misses the message (the connection dropped) finds
   * the record when its wait for the lease's expiry ends.
   */
  private announce(channel: string, record: Uint8Array): void {
    (this.connection.commands as Redis).publish(channel, record as Buffer).catch(noop);
  }

  /** @see RedisLease.release */
  releaseLease(key: string, token: string, notice: Uint8Array): Promise<boolean> {
    return this.bounded('release', () =>
      this.release([key, channelOf(key)], [token, notice, this.publishCommand]),
    ).then((reply) => reply === ReleaseReply.RELEASED, translate);
  }

  /** @see RedisLease.extend */
  renewLease(key: string, token: string, leaseMs: number, notice: Uint8Array): Promise<boolean> {
    return this.bounded('renew', () =>
      this.renew([key, channelOf(key)], [token, leaseMs, notice, this.publishCommand]),
    ).then((reply) => reply === RenewReply.RENEWED, translate);
  }

  /** @see RedisLease.fencingToken */
  nextFencingToken(key: string, token: string, fenceTtlMs: number): Promise<number | null> {
    return this.bounded('fence', () =>
      this.fence([key, fenceKeyOf(key)], [token, fenceTtlMs]),
    ).then((reply) => {
      if (reply === FenceReply.NOT_A_NUMBER) {
        throw new StoreDataError(`The fence counter of ${key} does not hold a number`);
      }
      return reply === FenceReply.LEASE_LOST ? null : reply;
    }, translate);
  }

  /**
   * redlock's lock on `key` with `token`, its expiry counted from `start` less the drift. `start`
   * is on the monotonic clock (see clock.ts), and so is the expiry: the lock is never handed to
   * redlock's own clock-based calls.
   */
  lockOf(key: string, token: string, leaseMs: number, start: number): Lock {
    return new Lock(this.redlock, [key], token, [], start + leaseMs - driftOf(leaseMs));
  }

  private bounded<T>(what: string, operation: () => Promise<T>): Promise<T> {
    const { cluster, commands, operationTimeoutMs, closed } = this.connection;
    if (!cluster) return operation();
    return clusterOperation(commands as Cluster, operation, operationTimeoutMs, what, closed);
  }
}

/** A held lease on one record key; every operation compares the token in Redis. */
export class RedisLease implements Lease {
  private readonly token: string;
  validUntil: number;

  constructor(
    private readonly leases: RedisLeases,
    private readonly key: string,
    lock: Lock,
  ) {
    this.token = lock.value;
    this.validUntil = lock.expiration;
  }

  extend(leaseMs: number, notice: Uint8Array): Promise<boolean> {
    const start = monotonicNow();
    return this.leases.renewLease(this.key, this.token, leaseMs, notice).then((renewed) => {
      if (renewed)
        this.validUntil = this.leases.lockOf(this.key, this.token, leaseMs, start).expiration;
      return renewed;
    });
  }

  complete(record: Uint8Array, ttlMs: number): Promise<boolean> {
    return this.leases.completeLease(this.key, this.token, record, ttlMs);
  }

  release(notice: Uint8Array): Promise<boolean> {
    return this.leases.releaseLease(this.key, this.token, notice);
  }

  fencingToken(fenceTtlMs: number): Promise<number | null> {
    return this.leases.nextFencingToken(this.key, this.token, fenceTtlMs);
  }
}

/**
 * How much earlier than Redis a holder counts its lease as gone: redlock's default allowance for
 * clock drift (1 %) plus 2 ms for Redis's expiry precision.
 */
export function driftOf(leaseMs: number): number {
  return Math.round(0.01 * leaseMs) + 2;
}

/**
 * Whether `INFO server` describes a server with `SET … IFEQ` (for tools and the bench; the store
 * itself probes with its first completion): Valkey ≥ 8.1 (which reports
 * `valkey_version`, and an old `redis_version` for compatibility), or Redis ≥ 8.4.
 */
export function hasSetIfeq(info: string): boolean {
  const valkey = /^valkey_version:(\d+)\.(\d+)/m.exec(info);
  if (valkey !== null) return atLeast(valkey, 8, 1);
  const redis = /^redis_version:(\d+)\.(\d+)/m.exec(info);
  return redis !== null && atLeast(redis, 8, 4);
}

function atLeast(match: RegExpExecArray, major: number, minor: number): boolean {
  const [actualMajor, actualMinor] = [Number(match[1]), Number(match[2])];
  return actualMajor > major || (actualMajor === major && actualMinor >= minor);
}

function isToken(held: Buffer, token: string): boolean {
  return held.byteLength === token.length && held.toString('latin1') === token;
}

function isSyntaxError(error: unknown): boolean {
  return error instanceof Error && /^ERR (syntax error|wrong number)/i.test(error.message);
}

/** A WRONGTYPE reply: the key holds data that is not ours to read. */
export function translate(err: unknown): never {
  if (err instanceof Error && err.message.startsWith('WRONGTYPE')) {
    throw new StoreDataError(err.message, { cause: err });
  }
  throw err;
}

function noop(): void {}
