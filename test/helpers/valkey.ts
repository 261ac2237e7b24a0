import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { OwnRedisServer } from './redis.js';

/** The Valkey the tests run for `SET … IFEQ`: built by test/tools/valkey.sh. */
export const VALKEY_VERSION = '8.1.1';

/**
 * The valkey-server binary: `VALKEY_SERVER` if set, else the cache folder test/tools/valkey.sh
 * builds into; when neither exists, the script is run to build it (a few minutes, once), so a
 * test that needs Valkey never has to skip.
 */
export function valkeyServerPath(): string {
  const fromEnv = process.env.VALKEY_SERVER;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const cacheRoot = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  const cached = join(
    cacheRoot,
    'idempotent-executor',
    `valkey-${VALKEY_VERSION}`,
    'valkey-server',
  );
  if (existsSync(cached)) return cached;
  const script = new URL('../tools/valkey.sh', import.meta.url).pathname;
  return execFileSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    .trim()
    .split('\n')
    .pop() as string;
}

/** A valkey-server this test owns, on a free port, stopped by pid. */
export function startOwnValkeyServer(): Promise<OwnRedisServer> {
  return OwnRedisServer.start([], valkeyServerPath());
}
