import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { VERSION } from '../../src/index.js';

const manifest = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
) as {
  version: string;
  exports: Record<string, unknown>;
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};

describe('package', () => {
  it('reports the version of package.json (script names carry it)', () => {
    assert.equal(VERSION, manifest.version);
  });

  it('pins redlock exactly and takes ioredis as a peer', () => {
    assert.equal(manifest.dependencies.redlock, '5.0.0-beta.2');
    assert.equal(manifest.peerDependencies.ioredis, '^5.10.1 || ^6.0.0');
  });

  it('takes the Nest packages as optional peers, needed only by idempotent-executor/nestjs', () => {
    for (const peer of ['@nestjs/common', '@nestjs/core', 'reflect-metadata', 'rxjs']) {
      assert.ok(manifest.peerDependencies[peer], peer);
      assert.equal(manifest.peerDependenciesMeta[peer]?.optional, true, peer);
    }
  });

  it('exports the core and every adapter as a subpath with types first', () => {
    for (const subpath of ['.', './payments', './http', './webhooks', './jobs', './nestjs']) {
      const entry = manifest.exports[subpath] as Record<string, Record<string, string>>;
      for (const condition of ['import', 'require']) {
        assert.deepEqual(
          Object.keys(entry[condition] ?? {}),
          ['types', 'default'],
          `${subpath} ${condition}`,
        );
      }
    }
  });
});
