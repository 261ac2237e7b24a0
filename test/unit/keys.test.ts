import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_KEY_LENGTH, recordKeyOf, validateKey } from '../../src/core/keys.js';

describe('record keys', () => {
  it('wraps the escaped key in a hash tag after the namespace', () => {
    assert.equal(recordKeyOf('payments', 'order-1'), 'payments:{order-1}');
  });

  it('keeps pairs apart that naive joining would collide', () => {
    assert.notEqual(recordKeyOf('a:b', 'c'), recordKeyOf('a', 'b:c'));
    assert.notEqual(recordKeyOf('a', '{b}'), recordKeyOf('a', '%7Bb%7D'));
    assert.notEqual(recordKeyOf('a{', 'b'), recordKeyOf('a', '{b'));
  });

  it('escapes braces and percent signs so the hash tag holds exactly the key', () => {
    const key = recordKeyOf('ns{x}', 'k}{%');
    const tag = key.slice(key.indexOf('{') + 1, key.indexOf('}'));
    assert.equal(tag, 'k%7D%7B%25');
    assert.equal(key, 'ns%7Bx%7D:{k%7D%7B%25}');
  });

  it('accepts keys up to the documented limit and rejects longer, empty and non-string keys', () => {
    validateKey('k'.repeat(MAX_KEY_LENGTH));
    for (const bad of ['', 'k'.repeat(MAX_KEY_LENGTH + 1), 1, undefined, {}]) {
      assert.throws(() => validateKey(bad), { code: 'IDEMPOTENCY_INVALID_KEY' });
    }
  });
});
