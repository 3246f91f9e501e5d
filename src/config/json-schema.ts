/**
 * The configuration schema as JSON Schema (draft 7, what editors' YAML
 * language servers read), generated from the zod schema so the two never
 * disagree: `gatehouse schema > gatehouse.schema.json`. It describes what a
 * file may contain (the input side: sizes and durations as numbers or
 * strings); rules across keys are `gatehouse check`'s.
 */
import { z } from 'zod';
import { configSchema } from './schema.js';

export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', target: 'draft-7', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    ...schema,
    $id: 'https://gatehouse.invalid/gatehouse.schema.json',
    title: 'Gatehouse configuration',
    description: 'A Gatehouse configuration file (YAML). See docs/configuration.md.',
  };
}
