import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { IdempotentExecutor, MemoryStore } from '../../src/index.js';

/**
 * What fn hands back, in every shape `await` accepts: the executor follows fn's result without an
 * async function of its own, so each shape is checked here, and none may end in an unhandled
 * rejection or a flight that never settles.
 */
describe('what fn returns or throws', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  let store: MemoryStore;
  let executor: IdempotentExecutor;
  let n = 0;
  const key = () => `fn-result-${++n}`;

  before(() => {
    process.on('unhandledRejection', onUnhandled);
    store = new MemoryStore();
    executor = new IdempotentExecutor({ store });
  });

  after(async () => {
    await executor.close();
    await store.close();
    // Let any stray rejection surface before the listener goes.
    await new Promise((resolve) => setImmediate(resolve));
    process.off('unhandledRejection', onUnhandled);
    assert.deepEqual(unhandled, []);
  });

  it('stores a primitive returned synchronously, and replays it', async () => {
    const k = key();
    assert.equal(await executor.run(k, () => 42), 42);
    assert.equal(await executor.run(k, () => 0), 42);
  });

  it('stores an object returned synchronously, and replays an equal copy', async () => {
    const k = key();
    const value = { id: 'ch_1', amount: 1999 };
    assert.equal(await executor.run(k, () => value), value);
    assert.deepEqual(await executor.run(k, () => ({})), value);
  });

  it('caches an error thrown synchronously and replays it', async () => {
    const k = key();
    const thrown = () => {
      throw new TypeError('declined');
    };
    await assert.rejects(executor.run(k, thrown), { name: 'TypeError', message: 'declined' });
    await assert.rejects(
      executor.run(k, () => 'never'),
      { name: 'TypeError', message: 'declined' },
    );
  });

  it('follows a thenable that is not a native promise, as await does', async () => {
    const k = key();
    const thenable = {
      // biome-ignore lint/suspicious/noThenProperty: a hand-made thenable is what is under test
      then(resolve: (value: string) => void) {
        setTimeout(() => resolve('from a thenable'), 5);
      },
    };
    assert.equal(
      await executor.run(k, () => thenable as unknown as PromiseLike<string>),
      'from a thenable',
    );
    assert.equal(await executor.run(k, () => 'never'), 'from a thenable');
  });

  it('fails with the error of a `then` getter that throws, and keeps it like any error of fn', async () => {
    const k = key();
    const hostile = Object.defineProperty({}, 'then', {
      get() {
        throw new RangeError('no then for you');
      },
    });
    await assert.rejects(
      executor.run(k, () => hostile),
      {
        name: 'RangeError',
        message: 'no then for you',
      },
    );
    await assert.rejects(
      executor.run(k, () => 'never'),
      { name: 'RangeError', message: 'no then for you' },
    );
  });

  it('hands a same-process duplicate the value of an fn that returned synchronously', async () => {
    const k = key();
    let runs = 0;
    const fn = () => {
      runs++;
      return 'once';
    };
    const results = await Promise.all([executor.run(k, fn), executor.run(k, fn)]);
    assert.deepEqual(results, ['once', 'once']);
    assert.equal(runs, 1);
  });

  it('lets an execution running at close() store its outcome before close() resolves', async () => {
    const own = new IdempotentExecutor({ store });
    const k = key();
    let finish!: (value: string) => void;
    const running = own.run(k, () => new Promise<string>((resolve) => (finish = resolve)));
    // Let the claim land and fn start.
    await new Promise((resolve) => setTimeout(resolve, 10));
    let closed = false;
    const closing = own.close().then(() => {
      closed = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(closed, false, 'close() resolved while fn still ran');
    finish('stored before close');
    await closing;
    assert.equal(await running, 'stored before close');
    assert.equal(await executor.run(k, () => 'never'), 'stored before close');
  });
});
