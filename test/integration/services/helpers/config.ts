/**
 * Config pieces the service tests share. Test clients are not browsers and
 * send no Origin; once the admission policy (issue 3) is in the schema, a
 * service has to say it admits such clients. The key is added only when the
 * schema knows it (the schema is strict).
 */
import { policyServiceFields } from '../../../../src/config/policy.js';

export const NON_BROWSER: Record<string, unknown> = 'allow_missing_origin' in policyServiceFields
  ? { allow_missing_origin: true }
  : {};

/** The same as YAML lines for a service block indented by `indent`. */
export function nonBrowserYaml(indent: string): string {
  return Object.entries(NON_BROWSER).map(([k, v]) => `${indent}${k}: ${JSON.stringify(v)}\n`).join('');
}
