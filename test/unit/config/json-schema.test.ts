import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { configJsonSchema } from '../../../src/config/json-schema.js';
import { configSchema } from '../../../src/config/schema.js';

const ROOT = join(import.meta.dirname, '../../..');

interface JsonSchema { properties?: Record<string, JsonSchema>; additionalProperties?: unknown; $schema?: string }

test('gatehouse.schema.json in the repository is what `gatehouse schema` prints now', () => {
  const committed = JSON.parse(readFileSync(join(ROOT, 'gatehouse.schema.json'), 'utf8')) as unknown;
  assert.deepEqual(committed, configJsonSchema(), 'a configuration key changed: regenerate it with npm run schema');
});

test('the JSON Schema names every root key and, like the loader, allows no other', () => {
  const schema = configJsonSchema() as JsonSchema;
  assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  assert.deepEqual(Object.keys(schema.properties ?? {}).sort(), Object.keys(configSchema.shape).sort());
  assert.equal(schema.additionalProperties, false, 'unknown root keys are flagged by editors too');
  const limits = schema.properties?.limits;
  assert.equal(limits?.additionalProperties, false);
  assert.ok(limits?.properties?.handshake_rate, 'limits.handshake_rate is described');
});

test('every example names the schema for editors, and uses only keys it describes', () => {
  const schema = configJsonSchema() as JsonSchema;
  for (const name of readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.yaml'))) {
    const text = readFileSync(join(ROOT, 'examples', name), 'utf8');
    assert.match(text, /^# yaml-language-server: \$schema=\.\.\/gatehouse\.schema\.json$/m, `${name}: schema comment`);
    for (const key of Object.keys(parseYaml(text) as object)) assert.ok(schema.properties?.[key], `${name}: ${key} is in the schema`);
  }
});
