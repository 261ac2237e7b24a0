import { MemoryStore } from '../../src/index.js';
import { behaviouralSuite } from './suite.js';

// One store shared by the suite's executors, as one Redis is shared by processes.
let shared = new MemoryStore();

behaviouralSuite({
  name: 'MemoryStore',
  options: () => ({ store: shared }),
  cleanUp: async () => {
    await shared.close();
    shared = new MemoryStore();
  },
  close: () => shared.close(),
});
