// A process of duplicate callers for the PostgreSQL scenario (bench/scenarios/postgres.ts),
// started with fork(): argv = store ('postgres' or 'redis'), URL, namespace, and for PostgreSQL
// the schema of the scenario's table. It answers rounds as bench/workers/waiter-rounds.ts
// describes.
import { openSubject } from '../scenarios/postgres.js';
import { answerRounds } from './waiter-rounds.js';

const [store = '', url = '', namespace = '', schema = ''] = process.argv.slice(2);
if (store !== 'postgres' && store !== 'redis') throw new Error(`unknown store ${store}`);
answerRounds(await openSubject(store, url, namespace, schema));
