/**
 * Config pieces the service tests share, written so they hold before and
 * after the admission policy (issue 3) is in the schema: the schema is strict,
 * so a key is added only when the schema knows it.
 *
 * - Test clients are not browsers and send no Origin: services admit them.
 * - The tests open many connections from 127.0.0.1 and stream hundreds of
 *   MiB through single connections: handshake and per-connection rate limits
 *   are lifted. (Those limits have their own tests; these test the relay.)
 */
import { limitsSchema } from '../../../../src/config/limits.js';
import { policyServiceFields } from '../../../../src/config/policy.js';

function known(candidates: Record<string, unknown>, keys: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(candidates).filter(([k]) => k in keys));
}

export const NON_BROWSER: Record<string, unknown> = known({ allow_missing_origin: true }, policyServiceFields);

export const TEST_LIMITS: Record<string, unknown> = known({
  handshake_rate: 1_000_000,
  handshake_burst: 1_000_000,
  message_rate: 100_000_000,
  byte_rate: '1GiB',
}, limitsSchema.shape);

/** NON_BROWSER as YAML lines for a service block indented by `indent`. */
export function nonBrowserYaml(indent: string): string {
  return Object.entries(NON_BROWSER).map(([k, v]) => `${indent}${k}: ${JSON.stringify(v)}\n`).join('');
}

/** The root `limits:` line (YAML flow style). */
export function limitsYaml(): string {
  return `limits: ${JSON.stringify(TEST_LIMITS)}\n`;
}
