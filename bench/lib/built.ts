import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The bench measures the package as users run it: its compiled output (`dist/esm`, imported by
 * the package's own name), not the TypeScript sources through tsx, whose `keepNames` transform
 * wraps every closure made per run in a naming call and made the executor look far slower than
 * it is. `npm run bench` builds first; this refuses a `dist` older than any source file.
 */
export function assertBuilt(root: string): void {
  const entry = join(root, 'dist', 'esm', 'index.js');
  let builtAt: number;
  try {
    builtAt = statSync(entry).mtimeMs;
  } catch {
    throw new Error(`${entry} is missing: run \`npm run build\` (npm run bench does it first)`);
  }
  const newest = newestIn(join(root, 'src'));
  if (newest.mtimeMs > builtAt) {
    throw new Error(
      `${newest.path} is newer than the build in dist/: run \`npm run build\` (npm run bench does it first)`,
    );
  }
}

function newestIn(dir: string): { path: string; mtimeMs: number } {
  let newest = { path: dir, mtimeMs: 0 };
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const found = entry.isDirectory() ? newestIn(path) : { path, mtimeMs: statSync(path).mtimeMs };
    if (found.mtimeMs > newest.mtimeMs) newest = found;
  }
  return newest;
}
