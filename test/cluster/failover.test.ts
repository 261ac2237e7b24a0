// A master of a 3 masters + 3 replicas cluster is SIGKILLed and its replica takes over:
// waiters follow their channel to the new master, and a storm of duplicates running through the
// failover ends with every caller settled and every execution accounted for.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Cluster } from 'ioredis';
import { recordKeyOf } from '../../src/core/keys.js';
import { type ExecutorEvent, IdempotentExecutor, isIdempotencyError } from '../../src/index.js';
import { keySlot } from '../../src/store/redis/key-slot.js';
import { uniqueNamespace, waitUntil } from '../helpers/redis.js';
import { type ClusterNodeProcess, LocalCluster } from './support/local-cluster.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A correctness bound (a caller must settle), far above every configured bound: not a speed claim. */
const SETTLES_WITHIN_MS = 45_000;

/** Subscriptions to `channel` on the master now serving its slot (PUBSUB SHARDNUMSUB). */
async function shardSubscribers(cluster: LocalCluster, channel: string): Promise<number> {
  const master = await cluster.masterOf(keySlot(channel));
  const reply = (await cluster.command(master.port, 'PUBSUB', 'SHARDNUMSUB', channel)) as [
    string,
    number,
  ];
  return Number(reply[1]);
}

/** Kills `master` and waits until its replica has taken its slots over; returns how long it took. */
async function failOver(cluster: LocalCluster, master: ClusterNodeProcess): Promise<number> {
  const killedAt = Date.now();
  await cluster.kill(master);
  await cluster.waitUntilHealthy(3, 0, 60_000);
  return Date.now() - killedAt;
}

describe('waiters while the master of their key fails over', () => {
  let cluster: LocalCluster;
  const clients: Cluster[] = [];
  const executors: IdempotentExecutor[] = [];
  before(async () => {
    cluster = await LocalCluster.start({ masters: 3, replicasPerMaster: 1 });
  });
  after(async () => {
    await Promise.all(executors.map((executor) => executor.close()));
    for (const client of clients) client.disconnect();
    await cluster?.stop();
  });

  it('with replicas: 1, hands each caller its value once the replica of the key master holds it', async () => {
    // Prepare
    const namespace = uniqueNamespace('cluster-replicas');
    const client = cluster.client();
    clients.push(client);
    const events: ExecutorEvent[] = [];
    const executor = new IdempotentExecutor({
      redis: client,
      namespace,
      replicas: 1,
      replicasTimeoutMs: 1_000,
      onEvent: (event) => events.push(event),
    });
    executors.push(executor);
    const keys = Array.from({ length: 30 }, (_, i) => `order-${i}`);
    const replicaOf = new Map<number, number>();
    for (const view of await cluster.topology()) {
      const master = (await cluster.topology()).find((candidate) => candidate.id === view.masterId);
      if (master !== undefined) replicaOf.set(master.port, view.port);
    }

    // Act: read each record from its master's replica as soon as its caller has the value.
    const seen = await Promise.all(
      keys.map(async (key) => {
        await executor.run(key, async () => ({ key }));
        const recordKey = recordKeyOf(namespace, key);
        const master = await cluster.masterOf(keySlot(recordKey));
        return cluster.readFromReplica(replicaOf.get(master.port) ?? 0, recordKey);
      }),
    );

    // Assess
    for (const [i, key] of keys.entries()) {
      assert.ok(seen[i] !== null, `${key} was not on the replica when run() resolved`);
    }
    assert.deepEqual(
      events.filter((event) => event.type === 'under-replicated'),
      [],
    );
  });

  it('get the value the owner completes on the promoted replica, before their wait bound', async () => {
    // Prepare: the lease (60 s) outlives the wait bound (20 s), so a waiter that lost its
    // subscription and never re-read would end with IDEMPOTENCY_WAIT_TIMEOUT.
    const namespace = uniqueNamespace('failover-wait');
    const executorOf = () => {
      const client = cluster.client();
      clients.push(client);
      const executor = new IdempotentExecutor({
        redis: client,
        namespace,
        leaseMs: 60_000,
        waitTimeoutMs: 20_000,
      });
      executors.push(executor);
      return executor;
    };
    const owner = executorOf();
    const waiters = [executorOf(), executorOf()];
    const channel = `${recordKeyOf(namespace, 'order-1')}:done`;
    const master = await cluster.masterOf(keySlot(channel));
    let finish!: () => void;
    const gate = new Promise<void>((resolve) => {
      finish = resolve;
    });
    let runs = 0;
    const running = owner.run('order-1', async () => {
      runs++;
      await gate;
      return { charged: 1200 };
    });
    await waitUntil(() => runs === 1, 10_000);
    const waited = waiters.flatMap((waiter) =>
      [1, 2, 3].map(() => waiter.run('order-1', async () => ({ charged: -1 }))),
    );
    await waitUntil(async () => (await shardSubscribers(cluster, channel)) >= 2, 10_000);
    // Each waiter re-reads the key right after subscribing; let that read be answered first. A
    // read cut off by the kill fails its call with IDEMPOTENCY_STORE_UNAVAILABLE (the master is
    // unreachable), which is not what this test is about: waiters already waiting. (A local round
    // trip takes well under a millisecond.)
    await new Promise((resolve) => setTimeout(resolve, 300));

    // Act: the master dies; once its replica serves the slot, the owner completes there.
    const failoverMs = await failOver(cluster, master);
    finish();
    const settled = await Promise.allSettled([running, ...waited]);

    // Assess
    console.log(`failover took ${failoverMs} ms`);
    assert.equal(runs, 1);
    for (const outcome of settled) {
      assert.deepEqual(outcome, { status: 'fulfilled', value: { charged: 1200 } });
    }
  });
});

/** How many times each value occurs, sorted by value. */
function countsOf(values: readonly number[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const value of [...values].sort((a, b) => a - b))
    counts.set(value, (counts.get(value) ?? 0) + 1);
  return counts;
}

interface Execution {
  readonly key: string;
  readonly executor: number;
  readonly startedAt: number;
  /** Events the executor reported for this execution (executed, under-replicated, lease-lost, store-failed). */
  readonly events: ExecutorEvent['type'][];
}

interface CallRecord {
  readonly key: string;
  readonly calledAt: number;
  settledAfterMs?: number;
  outcome?: { ok: true } | { ok: false; code: string };
}

describe('a storm of duplicates while a master is killed', () => {
  let cluster: LocalCluster;
  const clients: Cluster[] = [];
  const executors: IdempotentExecutor[] = [];
  before(async () => {
    cluster = await LocalCluster.start({ masters: 3, replicasPerMaster: 1 });
  });
  after(async () => {
    await Promise.all(executors.map((executor) => executor.close()));
    for (const client of clients) client.disconnect();
    await cluster?.stop();
  });

  it('settles every caller and explains every repeated execution', async () => {
    // Prepare: 4 executors (own connections each, as 4 processes), replicas: 1.
    const namespace = uniqueNamespace('storm');
    const victim = await cluster.masterOf(keySlot(recordKeyOf(namespace, 'order-0')));
    const mastersBefore = (await cluster.topology()).filter((view) => view.role === 'master');
    /** The port of the master that served `key` before the kill. */
    const masterPortOf = (key: string) => {
      const slot = keySlot(recordKeyOf(namespace, key));
      return mastersBefore.find((view) =>
        view.slots.some(([from, to]) => slot >= from && slot <= to),
      )?.port;
    };
    const executions: Execution[] = [];
    /** The execution running in each executor for each key, to attach its events to. */
    const current = new Map<string, Execution>();
    const stormers = Array.from({ length: 4 }, (_, index) => {
      const client = cluster.client();
      clients.push(client);
      return new IdempotentExecutor({
        redis: client,
        namespace,
        leaseMs: 6_000,
        waitTimeoutMs: 15_000,
        storeTimeoutMs: 2_000,
        replicas: 1,
        replicasTimeoutMs: 500,
        onEvent: (event) => {
          if (event.type === 'joined' || event.type === 'replayed') return;
          current.get(`${index}:${event.key}`)?.events.push(event.type);
        },
      });
    });
    executors.push(...stormers);
    const calls: CallRecord[] = [];
    const call = (executorIndex: number, key: string) => {
      const record: CallRecord = { key, calledAt: Date.now() };
      calls.push(record);
      const executor = stormers[executorIndex] as IdempotentExecutor;
      return executor
        .run(key, async () => {
          const execution: Execution = {
            key,
            executor: executorIndex,
            startedAt: Date.now(),
            events: [],
          };
          executions.push(execution);
          current.set(`${executorIndex}:${key}`, execution);
          await sleep(200 + Math.floor(Math.random() * 400));
          return { key, by: executorIndex, startedAt: execution.startedAt };
        })
        .then(
          () => {
            record.outcome = { ok: true };
          },
          (error: unknown) => {
            record.outcome = {
              ok: false,
              code: isIdempotencyError(error) ? error.code : `unexpected: ${String(error)}`,
            };
          },
        )
        .finally(() => {
          record.settledAfterMs = Date.now() - record.calledAt;
        });
    };

    // Act: every 100 ms for 9 s, 2 new keys and 4 of the last 30 are called by all 4
    // executors, so executions start, wait and replay throughout; at 2.5 s the master serving
    // order-0 is SIGKILLed and its replica takes over.
    const keys: string[] = [];
    const pending: Promise<void>[] = [];
    const stormStarted = Date.now();
    let killedAt = 0;
    let failoverMs = 0;
    const failover = sleep(2_500).then(async () => {
      killedAt = Date.now();
      failoverMs = await failOver(cluster, victim);
    });
    while (Date.now() - stormStarted < 9_000) {
      const fresh = [`order-${keys.length}`, `order-${keys.length + 1}`];
      keys.push(...fresh);
      const recent = keys.slice(-30);
      const picked = [
        ...fresh,
        ...Array.from(
          { length: 4 },
          () => recent[Math.floor(Math.random() * recent.length)] as string,
        ),
      ];
      for (const key of picked) {
        for (let e = 0; e < stormers.length; e++) pending.push(call(e, key));
      }
      await sleep(100);
    }
    await failover;
    let overdue: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(pending),
      new Promise((_, reject) => {
        overdue = setTimeout(
          () => reject(new Error('some callers never settled')),
          SETTLES_WITHIN_MS,
        );
      }),
    ]).finally(() => clearTimeout(overdue));

    // Assess
    const codes = new Map<string, number>();
    for (const record of calls) {
      const code = record.outcome?.ok === false ? record.outcome.code : 'value';
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    const perKey = new Map<string, Execution[]>();
    for (const execution of executions) {
      perKey.set(execution.key, [...(perKey.get(execution.key) ?? []), execution]);
    }
    const repeated = [...perKey].filter(([, list]) => list.length > 1);
    // What the store kept for each execution whose completion was refused (LEASE_LOST): its own
    // record (the completion ran on the old master and reached the replica, but its reply was
    // lost and the retry found a record instead of the lease), or not.
    const refused = executions.filter((execution) => execution.events.includes('lease-lost'));
    const keptAnyway: string[] = [];
    for (const execution of refused) {
      const stored = await (stormers[0] as IdempotentExecutor)
        .run(
          execution.key,
          () => {
            throw new Error('absent');
          },
          { shouldCacheError: () => false },
        )
        .catch(() => undefined);
      if ((stored as { startedAt?: number } | undefined)?.startedAt === execution.startedAt) {
        keptAnyway.push(execution.key);
      }
    }
    const settleTimes = calls
      .map((record) => record.settledAfterMs ?? Infinity)
      .sort((a, b) => a - b);
    const percentile = (p: number) => settleTimes[Math.floor((settleTimes.length - 1) * p)];
    console.log(
      [
        `storm: ${calls.length} calls on ${perKey.size} keys, ${executions.length} executions; ` +
          `master :${victim.port} killed at ${killedAt - stormStarted} ms, failover took ${failoverMs} ms`,
        `outcomes: ${[...codes].map(([code, count]) => `${code} ${count}`).join(', ')}`,
        `settle time: p50 ${percentile(0.5)} ms, p99 ${percentile(0.99)} ms, max ${percentile(1)} ms`,
        `keys on the killed master: ${keys.filter((key) => masterPortOf(key) === victim.port).length}/${keys.length}`,
        `completions refused (lease-lost): ${refused.length}, of which ${keptAnyway.length} ` +
          `were stored anyway: ${keptAnyway.join(' ')}`,
        `keys by executions: ${[...countsOf([...perKey.values()].map((list) => list.length))]
          .map(([runs, count]) => `${count} ran ${runs}x`)
          .join(', ')}; ${keys.length - perKey.size} never ran (every call failed)`,
        ...repeated.map(
          ([key, list]) =>
            `  ${key} (master :${masterPortOf(key)}): ` +
            list
              .map(
                (e) =>
                  `#${e.executor} at ${e.startedAt - stormStarted} ms [${e.events.join(', ')}]`,
              )
              .join(' then '),
        ),
      ].join('\n'),
    );

    // Every caller settled, with a value or a typed error a failover explains.
    for (const record of calls) {
      assert.ok(record.outcome !== undefined, `${record.key} never settled`);
      if (!record.outcome.ok) {
        assert.ok(
          [
            'IDEMPOTENCY_STORE_UNAVAILABLE',
            'IDEMPOTENCY_WAIT_TIMEOUT',
            'IDEMPOTENCY_LEASE_LOST',
          ].includes(record.outcome.code),
          `${record.key}: ${record.outcome.code}`,
        );
      }
      assert.ok((record.settledAfterMs ?? Infinity) < SETTLES_WITHIN_MS);
    }
    // A key runs again only if it lived on the killed master and the earlier execution's record
    // may not have reached the replica: its WAIT was not acknowledged (under-replicated), its
    // lease was lost, or its record could not be stored.
    for (const [key, list] of repeated) {
      assert.equal(masterPortOf(key), victim.port, `${key} ran ${list.length} times`);
      for (const earlier of list.slice(0, -1)) {
        assert.ok(
          earlier.events.some((type) =>
            ['under-replicated', 'lease-lost', 'store-failed'].includes(type),
          ),
          `${key} ran again after an execution with events [${earlier.events.join(', ')}]`,
        );
      }
    }
  });
});
