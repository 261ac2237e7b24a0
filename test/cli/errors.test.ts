// The command's usage errors and failures: a message, a non-zero exit code, never a hang.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { freePort, REDIS_URL } from '../helpers/redis.js';
import { runCli } from './support.js';

describe('usage and failures', () => {
  it('--help prints the usage and exits 0', async () => {
    // Act
    const result = await runCli(['--help']);

    // Assess
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^Usage: idempotent-executor <command> \[options\]/);
    for (const command of ['inspect', 'forget', 'list', 'stats', 'watch']) {
      assert.match(result.stdout, new RegExp(`^  ${command}`, 'm'));
    }
  });

  it('an unknown command exits 2 with the usage', async () => {
    // Act
    const result = await runCli(['frobnicate']);

    // Assess
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Unknown command "frobnicate"/);
    assert.match(result.stderr, /Usage: idempotent-executor/);
  });

  it('no command at all exits 2', async () => {
    // Act
    const result = await runCli([]);

    // Assess
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Expected a command/);
  });

  it('an unknown option exits 2 naming it', async () => {
    // Act
    const result = await runCli(['list', '--colour']);

    // Assess
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--colour/);
  });

  it('an option of another command exits 2', async () => {
    // Act
    const result = await runCli(['inspect', 'k', '--state', 'running']);

    // Assess
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Option --state does not apply to inspect/);
  });

  it('inspect without a key exits 2', async () => {
    // Act
    const result = await runCli(['inspect', '--redis', REDIS_URL]);

    // Assess
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Expected exactly one key after inspect/);
  });

  it('a bad --state or --limit exits 2 naming what was expected', async () => {
    // Act
    const state = await runCli(['list', '--state', 'done']);
    const limit = await runCli(['list', '--limit', '-3']);

    // Assess
    assert.equal(state.code, 2);
    assert.match(state.stderr, /Expected --state to be running or completed, got "done"/);
    assert.equal(limit.code, 2);
    assert.match(limit.stderr, /--limit/);
  });

  it('a malformed --redis URL exits 2', async () => {
    // Act
    const notUrl = await runCli(['stats', '--redis', 'localhost:6379']);
    const http = await runCli(['stats', '--redis', 'http://127.0.0.1:6379']);

    // Assess
    assert.equal(notUrl.code, 2);
    assert.match(notUrl.stderr, /Expected --redis to be a/);
    assert.equal(http.code, 2);
    assert.match(http.stderr, /redis:\/\/ or rediss:\/\//);
  });

  it('a Redis that does not answer exits 1 with the reason, within the --timeout bound', async () => {
    // Prepare
    const port = await freePort();

    // Act
    const started = Date.now();
    const result = await runCli([
      'stats',
      '--redis',
      `redis://127.0.0.1:${port}`,
      '--timeout',
      '1000',
    ]);

    // Assess
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`Cannot connect to Redis at redis://127.0.0.1:${port}`));
    assert.match(result.stderr, /ECONNREFUSED/);
    assert.ok(Date.now() - started < 10_000);
  });

  it('REDIS_URL is the default address', async () => {
    // Prepare
    const port = await freePort();

    // Act
    const result = await runCli(['stats'], { env: { REDIS_URL: `redis://127.0.0.1:${port}` } });

    // Assess
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
  });

  it('with --json, errors are one JSON object on stderr', async () => {
    // Prepare
    const port = await freePort();

    // Act
    const down = await runCli(['stats', '--json', '--redis', `redis://127.0.0.1:${port}`]);
    const usage = await runCli(['nope', '--json']);

    // Assess
    assert.equal(down.code, 1);
    assert.equal(
      (JSON.parse(down.stderr) as { error: { code: string } }).error.code,
      'REDIS_UNAVAILABLE',
    );
    assert.equal(usage.code, 2);
    assert.equal((JSON.parse(usage.stderr) as { error: { code: string } }).error.code, 'USAGE');
  });

  it('the password of the URL is masked in messages', async () => {
    // Prepare
    const port = await freePort();

    // Act
    const result = await runCli(['stats', '--redis', `redis://user:s3cret@127.0.0.1:${port}`]);

    // Assess
    assert.equal(result.code, 1);
    assert.doesNotMatch(result.stderr, /s3cret/);
    assert.match(result.stderr, /user:\*\*\*@/);
  });
});
