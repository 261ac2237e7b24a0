// A process of duplicate callers for the waiters scenario (bench/scenarios/waiters.ts), started
// with fork(): argv = subject name, Redis URL, namespace. It answers rounds as
// bench/workers/waiter-rounds.ts describes.
import { subjects } from '../subjects/all.js';
import { answerRounds } from './waiter-rounds.js';

const [subjectName = '', redisUrl = '', namespace = ''] = process.argv.slice(2);
const factory = subjects.get(subjectName);
if (factory === undefined) throw new Error(`unknown subject ${subjectName}`);
answerRounds(await factory(redisUrl, namespace));
