// `npm test`: finds a Redis (REDIS_URL, default redis://127.0.0.1:6379); if nothing answers and
// redis-server is on PATH, starts a throwaway one on a free port for this run; otherwise fails at
// once saying how to get Redis. Then runs every test file with Node's test runner.
//
//   npm test                      all suites
//   npm test -- test/unit         only files under the given paths
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const requested = process.argv.slice(2);

function findTests(dir) {
  return readdirSync(dir)
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return findTests(path);
      return name.endsWith('.test.ts') ? [path] : [];
    })
    .sort();
}

function ping(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port || 6379) });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function startThrowawayRedis() {
  const port = await freePort();
  const server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (await ping(url)) return { url, server };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  server.kill('SIGKILL');
  throw new Error(`redis-server did not answer on port ${port}`);
}

let redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
let throwaway;
if (!(await ping(redisUrl))) {
  const hasServer = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!hasServer) {
    console.error(
      `No Redis answers at ${redisUrl} and redis-server is not on PATH.\n` +
        'Start one (e.g. `docker run -p 6379:6379 redis:7` or `apt-get install redis-server`),\n' +
        'or point REDIS_URL at a Redis you may write to.',
    );
    process.exit(1);
  }
  throwaway = await startThrowawayRedis();
  redisUrl = throwaway.url;
  console.log(`No Redis at the default address: started a throwaway redis-server at ${redisUrl}`);
}

const roots =
  requested.length > 0 ? requested.map((path) => join(root, path)) : [join(root, 'test')];
const files = roots.flatMap((path) => (statSync(path).isDirectory() ? findTests(path) : [path]));
if (files.length === 0) {
  console.error(`No test files under ${requested.join(', ') || 'test/'}`);
  process.exit(1);
}

const child = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-reporter=spec',
    ...files.map((file) => relative(root, file)),
  ],
  { cwd: root, stdio: 'inherit', env: { ...process.env, REDIS_URL: redisUrl } },
);
const code = await new Promise((resolve) =>
  child.on('exit', (status, signal) => resolve(status ?? (signal ? 1 : 0))),
);
throwaway?.server.kill('SIGTERM');
process.exit(code);
