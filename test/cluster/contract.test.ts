// The behavioural contract of IdempotentExecutor (test/contract/suite.ts), run on a Redis
// Cluster of three masters this file starts: the same semantics as on one server.
import { after, before } from 'node:test';
import type { Cluster } from 'ioredis';
import { behaviouralSuite } from '../contract/suite.js';
import { LocalCluster } from './support/local-cluster.js';
import { deleteClusterNamespace } from './support/namespace.js';

let cluster: LocalCluster;
let redis: Cluster;

before(async () => {
  cluster = await LocalCluster.start({ masters: 3 });
  redis = cluster.client();
});
after(async () => {
  await cluster?.stop();
});

behaviouralSuite({
  name: 'Redis Cluster (3 masters)',
  options: (namespace) => ({ redis, namespace }),
  cleanUp: (namespace) => deleteClusterNamespace(redis, namespace),
  close: async () => {
    await redis.quit();
  },
});
