import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { closeConnection } from './close-connection.js';
import { connectToNode } from './cluster-nodes.js';
import { keySlot } from './key-slot.js';

/** What the store hears from {@link ClusterSubscriber}. */
export interface ShardChannelEvents {
  message(channel: string, bytes: Buffer): void;
  /**
   * The channel's subscription was made again (on the slot's new master after a failover or a
   * slot migration, or on a reconnected connection): messages published meanwhile may be lost.
   */
  resync(channel: string): void;
}

interface ChannelState {
  readonly slot: number;
  /** The node (`host:port`) the channel is subscribed, or being subscribed, on. */
  node: string | undefined;
  /** That node acknowledged the SSUBSCRIBE, and nothing since put the subscription in doubt. */
  active: boolean;
  /** An SSUBSCRIBE for this channel is on its way. */
  pending: boolean;
  /** Bumped at each placement, so the reply to an older one is not mistaken for the latest. */
  attempt: number;
}

/** Delay of the first slot refresh after a subscription is lost, ms; doubled up to the max. */
const MIN_REPAIR_DELAY_MS = 100;
const MAX_REPAIR_DELAY_MS = 500;
/** How often a first subscription follows a MOVED reply before giving up. */
const MAX_REDIRECTS = 3;

/**
 * Sharded pub/sub on a Redis Cluster: each channel is SSUBSCRIBEd on the master serving its
 * slot, over one subscriber connection per master, and follows its slot when the slot moves.
 *
 * ioredis's own `shardedSubscribers` is not used. While a master is down it replaces the dead
 * node's subscriber, fails to connect, and refreshes the slot map again at once, in a loop of
 * a few hundred CLUSTER SLOTS connections a second until the failover ends; and it sends the
 * resubscriptions without waiting for their replies, so a re-read made after them can still
 * miss a message. Here the slot map comes from the store's command connection (`cluster`),
 * which learns of moves from MOVED replies and from the refreshes asked for below, at most two
 * a second while a subscription is missing; and a listener is told to resync only once the
 * SSUBSCRIBE that makes its channel live again has been acknowledged.
 */
export class ClusterSubscriber {
  private readonly channels = new Map<string, ChannelState>();
  private readonly connections = new Map<string, Redis>();
  private repairTimer: NodeJS.Timeout | undefined;
  private repairDelayMs = MIN_REPAIR_DELAY_MS;
  private closed = false;
  private readonly onRefresh = () => this.reconcile();

  /**
   * @param cluster the store's command connection: its slot map decides where channels live.
   * @param connectionOptions options of each subscriber connection, over the cluster's own
   * `redisOptions` (timeouts, TLS, credentials).
   */
  constructor(
    private readonly cluster: Cluster,
    private readonly connectionOptions: RedisOptions,
    private readonly events: ShardChannelEvents,
  ) {
    cluster.on('refresh', this.onRefresh);
  }

  /** Resolves once the master serving the channel's slot acknowledged the SSUBSCRIBE. */
  async subscribe(channel: string): Promise<void> {
    const state: ChannelState = {
      slot: keySlot(channel),
      node: undefined,
      active: false,
      pending: false,
      attempt: 0,
    };
    this.channels.set(channel, state);
    try {
      for (let redirects = 0; ; redirects++) {
        try {
          await this.place(channel, state, await this.ownerOf(state.slot));
          return;
        } catch (error) {
          // A MOVED reply: our slot map is stale. Learn the new one and try there.
          if (!isRedirect(error) || redirects >= MAX_REDIRECTS) throw error;
          await this.refreshSlots();
        }
      }
    } catch (error) {
      if (this.channels.get(channel) === state) this.channels.delete(channel);
      throw error;
    }
  }

  unsubscribe(channel: string): void {
    const state = this.channels.get(channel);
    if (state === undefined) return;
    this.channels.delete(channel);
    // Commands on one connection run in order: an SSUBSCRIBE still on its way is undone.
    if (state.node !== undefined)
      this.connections.get(state.node)?.sunsubscribe(channel).catch(noop);
  }

  /** Closes every subscriber connection; resolves once they have ended (see closeConnection). */
  async close(boundMs: number): Promise<void> {
    this.closed = true;
    clearTimeout(this.repairTimer);
    this.cluster.off('refresh', this.onRefresh);
    const connections = [...this.connections.values()];
    this.connections.clear();
    this.channels.clear();
    await Promise.all(connections.map((connection) => closeConnection(connection, boundMs)));
  }

  /** SSUBSCRIBEs `channel` on `node`; true when this is still the channel's latest placement. */
  private async place(channel: string, state: ChannelState, node: string): Promise<boolean> {
    const attempt = ++state.attempt;
    const previous = state.node;
    state.node = node;
    state.active = false;
    state.pending = true;
    if (previous !== undefined && previous !== node) {
      this.connections.get(previous)?.sunsubscribe(channel).catch(noop);
    }
    try {
      await this.connectionTo(node).ssubscribe(channel);
    } finally {
      if (state.attempt === attempt) state.pending = false;
    }
    if (state.attempt !== attempt) return false;
    if (this.channels.get(channel) !== state) {
      // Unsubscribed while the SSUBSCRIBE was on its way: undo it, unless the channel was
      // subscribed again meanwhile on this very connection.
      if (this.channels.get(channel)?.node !== node) {
        this.connections.get(node)?.sunsubscribe(channel).catch(noop);
      }
      return false;
    }
    state.active = true;
    return true;
  }

  /** Moves every channel whose subscription is not live on its slot's master there. */
  private reconcile(): void {
    if (this.closed) return;
    for (const [channel, state] of this.channels) {
      const owner = this.cluster.slots[state.slot]?.[0];
      if (owner === undefined) continue;
      // Live, or on its way to the right node. An SSUBSCRIBE still waiting on a node that no
      // longer serves the slot (a dead master's connection) is superseded, not waited for.
      if (state.node === owner && (state.active || state.pending)) continue;
      this.place(channel, state, owner).then(
        (current) => {
          if (current) this.events.resync(channel);
        },
        () => this.scheduleRepair(),
      );
    }
    this.dropStaleConnections();
  }

  /** A connection dropped: its channels may miss messages until they are subscribed again. */
  private connectionLost(node: string): void {
    if (this.closed) return;
    for (const state of this.channels.values()) {
      if (state.node === node) state.active = false;
    }
    this.scheduleRepair();
  }

  /**
   * The node unsubscribed us on its own (its slot migrated away) or answered MOVED: which
   * channels it dropped is not said, so each of its channels is placed again.
   */
  private channelsMoved(node: string): void {
    if (this.closed) return;
    for (const state of this.channels.values()) {
      if (state.node === node) state.active = false;
    }
    // The node has just told us: refresh now (reconciling on success), back off only after.
    this.repairDelayMs = MIN_REPAIR_DELAY_MS;
    this.cluster.refreshSlotsCache(() => this.scheduleRepair());
  }

  /** Refreshes the slot map (which reconciles) until every channel is live again, backing off. */
  private scheduleRepair(): void {
    if (this.closed || this.repairTimer !== undefined) return;
    this.repairTimer = setTimeout(() => {
      this.repairTimer = undefined;
      if (!this.needsRepair()) {
        this.repairDelayMs = MIN_REPAIR_DELAY_MS;
        return;
      }
      this.cluster.refreshSlotsCache(() => {
        // A successful refresh has reconciled through the 'refresh' event; retry either way.
        this.repairDelayMs = Math.min(this.repairDelayMs * 2, MAX_REPAIR_DELAY_MS);
        if (this.needsRepair()) this.scheduleRepair();
        else this.repairDelayMs = MIN_REPAIR_DELAY_MS;
      });
    }, this.repairDelayMs);
    this.repairTimer.unref();
  }

  private needsRepair(): boolean {
    for (const state of this.channels.values()) {
      if (!state.active) return true;
    }
    return false;
  }

  private async ownerOf(slot: number): Promise<string> {
    let owner = this.cluster.slots[slot]?.[0];
    if (owner === undefined) {
      await this.refreshSlots();
      owner = this.cluster.slots[slot]?.[0];
    }
    if (owner === undefined)
      throw new Error(`No Redis Cluster node is known to serve slot ${slot}`);
    return owner;
  }

  private refreshSlots(): Promise<void> {
    if (this.cluster.status === 'wait') this.cluster.connect().catch(noop);
    return new Promise((resolve) => this.cluster.refreshSlotsCache(() => resolve()));
  }

  private connectionTo(node: string): Redis {
    // A subscription that was on its way (its slot map being refreshed) when the store closed.
    if (this.closed) throw new Error('The store is closed');
    let connection = this.connections.get(node);
    if (connection !== undefined) return connection;
    const created = connectToNode(this.cluster, node, {
      ...this.connectionOptions,
      // Subscriptions are restored here, acknowledged, before listeners are told to resync.
      autoResubscribe: false,
      lazyConnect: false,
      readOnly: false,
      retryStrategy: (times: number) =>
        Math.min(MIN_REPAIR_DELAY_MS * 2 ** times, MAX_REPAIR_DELAY_MS),
    });
    created.on('smessageBuffer', (name: Buffer, message: Buffer) =>
      this.events.message(name.toString(), message),
    );
    created.on('close', () => this.connectionLost(node));
    created.on('moved', () => this.channelsMoved(node));
    created.on('ready', () => this.reconcile());
    this.connections.set(node, created);
    connection = created;
    return connection;
  }

  /** Closes connections to nodes that serve no slot any more and carry no channel. */
  private dropStaleConnections(): void {
    const masters = new Set(
      this.cluster.nodes('master').map((node) => `${node.options.host}:${node.options.port}`),
    );
    for (const [node, connection] of this.connections) {
      if (masters.has(node)) continue;
      let used = false;
      for (const state of this.channels.values()) {
        if (state.node === node) {
          used = true;
          break;
        }
      }
      if (used) continue;
      this.connections.delete(node);
      void closeConnection(connection, MAX_REPAIR_DELAY_MS);
    }
  }
}

function isRedirect(error: unknown): boolean {
  return error instanceof Error && /^(MOVED|ASK) /.test(error.message);
}

function noop(): void {}
