// Options of the jobs adapter: defaults, and validation at construction with InvalidOptionError
// naming the option (no store involved: a MemoryStore executor).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  defaultJobRunSettings,
  idempotentProcessor,
  MessageGuard,
  type MessageGuardOptions,
} from '../../../src/adapters/jobs/index.js';
import {
  ErrorCode,
  IdempotentExecutor,
  InvalidOptionError,
  MemoryStore,
  MIN_LEASE_MS,
} from '../../../src/index.js';

const executor = new IdempotentExecutor({ store: new MemoryStore() });
const work = async () => 'done';

/** [option, value] pairs each adapter must refuse, with the option named in the error. */
const badSettings: [string, unknown][] = [
  ['leaseMs', MIN_LEASE_MS - 1],
  ['leaseMs', 1.5],
  ['waitTimeoutMs', 0],
  ['waitTimeoutMs', '60000'],
  ['ttlMs', -1],
  ['ttlMs', Number.NaN],
  ['shouldCacheError', true],
];

function assertRefuses(build: () => unknown, option: string): void {
  assert.throws(build, (error: unknown) => {
    assert.ok(error instanceof InvalidOptionError, `expected InvalidOptionError for ${option}`);
    assert.equal(error.code, ErrorCode.INVALID_OPTION);
    assert.equal(error.option, option);
    assert.match(error.message, new RegExp(`^Expected \`${option}\` to be `));
    return true;
  });
}

describe('jobs adapter options', () => {
  it('has frozen defaults: a 30 s lease, a 60 s wait and no error cached', () => {
    assert.ok(Object.isFrozen(defaultJobRunSettings));
    assert.equal(defaultJobRunSettings.leaseMs, 30_000);
    assert.equal(defaultJobRunSettings.waitTimeoutMs, 60_000);
    assert.equal(defaultJobRunSettings.shouldCacheError(new Error('any')), false);
  });

  it('refuses out-of-range or mistyped settings in MessageGuard, naming the option', () => {
    for (const [option, value] of badSettings) {
      assertRefuses(
        () => new MessageGuard(executor, { scope: 'q', [option]: value } as MessageGuardOptions),
        option,
      );
    }
  });

  it('refuses out-of-range or mistyped settings in idempotentProcessor, naming the option', () => {
    for (const [option, value] of badSettings) {
      assertRefuses(() => idempotentProcessor(executor, work, { [option]: value }), option);
    }
  });

  it('refuses a missing or empty scope, a missing executor and a non-object options argument', () => {
    assertRefuses(() => new MessageGuard(executor, {} as MessageGuardOptions), 'scope');
    assertRefuses(() => new MessageGuard(executor, { scope: '' }), 'scope');
    assertRefuses(() => new MessageGuard({} as IdempotentExecutor, { scope: 'q' }), 'executor');
    assertRefuses(
      () => new MessageGuard(executor, null as unknown as MessageGuardOptions),
      'options',
    );
    assertRefuses(() => idempotentProcessor(executor, work, { scope: '' }), 'scope');
    assertRefuses(() => idempotentProcessor(undefined as never, work), 'executor');
  });

  it('refuses a scope that is not well-formed Unicode, which would share keys with another scope', () => {
    for (const scope of ['s\uD800', 's\uDC00', 'orders\uDBFF']) {
      assertRefuses(() => new MessageGuard(executor, { scope }), 'scope');
      assertRefuses(() => idempotentProcessor(executor, work, { scope }), 'scope');
    }
  });

  it('refuses a work, key or fingerprint that is not a function', () => {
    assertRefuses(() => idempotentProcessor(executor, 'work' as never), 'work');
    assertRefuses(() => idempotentProcessor(executor, work, { key: 'orderId' as never }), 'key');
    assertRefuses(
      () => idempotentProcessor(executor, work, { fingerprint: {} as never }),
      'fingerprint',
    );
  });

  it('declares three parameters, so BullMQ hands the processor its job signal', () => {
    assert.equal(idempotentProcessor(executor, work).length, 3);
  });
});
