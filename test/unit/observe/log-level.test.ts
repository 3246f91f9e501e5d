import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/observe/log.js';

test('log lines name their level in words ("level":"info"), not pino\'s numbers', () => {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk: Buffer, _e, cb) { lines.push(chunk.toString('utf8')); cb(); } });
  const log = createLogger('debug', sink);
  log.info('hello');
  log.warn({ audit: true }, 'careful');
  const parsed = lines.join('').trim().split('\n').map((l) => JSON.parse(l) as { level: unknown; msg: string });
  assert.deepEqual(parsed.map((l) => [l.level, l.msg]), [['info', 'hello'], ['warn', 'careful']]);
});
