import { connect, deleteNamespace } from '../helpers/redis.js';
import { behaviouralSuite } from './suite.js';

const redis = connect();

behaviouralSuite({
  name: 'Redis',
  options: (namespace) => ({ redis, namespace }),
  cleanUp: (namespace) => deleteNamespace(redis, namespace),
  close: async () => {
    await redis.quit();
  },
});
