// dist/cjs holds CommonJS under a package whose "type" is "module": a nested package.json
// tells Node (and TypeScript) how to read each tree.
import { writeFileSync } from 'node:fs';

const dist = new URL('../../dist/', import.meta.url);
writeFileSync(new URL('cjs/package.json', dist), `${JSON.stringify({ type: 'commonjs' })}\n`);
writeFileSync(new URL('esm/package.json', dist), `${JSON.stringify({ type: 'module' })}\n`);
