import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../../src/errors.js';
import { DEFAULT_CONFIG } from '../../../src/config/default.js';
import { interpolateEnv, loadConfigFile, loadDefaultConfig, parseConfigText } from '../../../src/config/load.js';
import { parseDuration, parseSize } from '../../../src/config/units.js';

const EXAMPLES = join(import.meta.dirname, '../../../examples');

function issuesOf(fn: () => unknown): string[] {
  try { fn(); } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.issues;
  }
  assert.fail('expected a ConfigError');
}

test('sizes: bytes, binary multiples, junk refused', () => {
  assert.equal(parseSize(1000), 1000);
  assert.equal(parseSize('64KiB'), 65536);
  assert.equal(parseSize('1MiB'), 1048576);
  assert.equal(parseSize('16k'), 16384);
  assert.equal(parseSize('1.5m'), 1572864);
  assert.equal(parseSize('12zz'), undefined);
  assert.equal(parseSize(-1), undefined);
  assert.equal(parseSize('1e9'), undefined);
});

test('durations: bare numbers are seconds; units', () => {
  assert.equal(parseDuration(10), 10_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('10s'), 10_000);
  assert.equal(parseDuration('2m'), 120_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('soon'), undefined);
});

test('${ENV} and ${ENV:-default} are interpolated in every string; a missing one names its key', () => {
  const issues: string[] = [];
  const out = interpolateEnv({ a: ['x${A}y', { b: '${B:-dflt}' }], c: '${MISSING}' }, { A: '1' }, [], issues);
  assert.deepEqual(out, { a: ['x1y', { b: 'dflt' }], c: '' });
  assert.deepEqual(issues, ['c: environment variable MISSING is not set']);
});

test('every bad key is reported with its path, line and column, all at once', () => {
  const issues = issuesOf(() => parseConfigText([
    'services:',
    '  x:',
    '    type: echo',
    '    path: nope',
    '    bogus: 1',
    'limits:',
    '  header_bytes: 12zz',
  ].join('\n'), {}));
  assert.ok(issues.includes('services.x.path (line 4, column 5): a path starts with "/" and has no spaces'), issues.join('\n'));
  assert.ok(issues.includes('services.x (line 5, column 5): unknown key "bogus"'), issues.join('\n'));
  assert.ok(issues.some((i) => i.startsWith('limits.header_bytes (line 7, column 3): not a size')), issues.join('\n'));
});

test('an unknown service type names the key', () => {
  const issues = issuesOf(() => parseConfigText('services:\n  x:\n    type: teleport\n    path: /x\n', {}));
  assert.ok(issues.some((i) => i.startsWith('services.x.type')), issues.join('\n'));
});

test('two services on the same path are refused', () => {
  const issues = issuesOf(() => parseConfigText('services:\n  a:\n    type: echo\n    path: /x\n  b:\n    type: echo\n    path: /x\n', {}));
  assert.deepEqual(issues, ['services.b.path (line 7, column 5): /x is already served by service a']);
});

test('max_message above the 16 MiB hard cap is refused', () => {
  const issues = issuesOf(() => parseConfigText('services:\n  a:\n    type: echo\n    path: /x\n    max_message: 17MiB\n', {}));
  assert.ok(issues.some((i) => i.startsWith('services.a.max_message')), issues.join('\n'));
});

test('invalid YAML is reported as such', () => {
  const issues = issuesOf(() => parseConfigText('services: [\n', {}));
  assert.ok(issues.length > 0);
});

test('the built-in default: loopback :8080, echo at /echo; GATEHOUSE_PORT moves it', () => {
  const c = loadDefaultConfig({});
  assert.deepEqual(c.listen.map((l) => [l.host, l.port]), [['127.0.0.1', 8080]]);
  assert.equal(c.services.echo.path, '/echo');
  assert.equal(c.services.echo.type, 'echo');
  assert.equal(loadDefaultConfig({ GATEHOUSE_PORT: '9001' }).listen[0].port, 9001);
});

test('examples/default.yaml is the built-in default, word for word', () => {
  assert.equal(readFileSync(join(EXAMPLES, 'default.yaml'), 'utf8'), DEFAULT_CONFIG);
});

test('every example configuration is valid', () => {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 2);
  for (const f of files) {
    // Examples may name files (certificates, users) that only exist on a real host: the schema is what is checked.
    assert.doesNotThrow(() => loadConfigFile(join(EXAMPLES, f), { ...process.env }), f);
  }
});
