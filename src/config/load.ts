/**
 * Loads configuration: YAML text → ${ENV} interpolation → schema validation.
 * Every problem is reported with the dotted path of the key it concerns.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError } from '../errors.js';
import { configSchema, type GatehouseConfig, type ServiceConfig } from './schema.js';
import { DEFAULT_CONFIG } from './default.js';
import { describeIssues, formatPath, where, type SourceMap } from './issues.js';
import { inspectIssues } from './inspect.js';

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replace ${VAR} and ${VAR:-default} in every string value; a missing variable is an error. */
export function interpolateEnv(value: unknown, env: NodeJS.ProcessEnv, path: string[] = [], issues: string[] = []): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_m, name: string, fallback: string | undefined) => {
      const v = env[name];
      if (v !== undefined) return v;
      if (fallback !== undefined) return fallback;
      issues.push(`${formatPath(path)}: environment variable ${name} is not set`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateEnv(v, env, [...path, String(i)], issues));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolateEnv(v, env, [...path, k], issues);
    return out;
  }
  return value;
}

/**
 * Validate an already-parsed object (YAML/JSON) into a typed config. Every
 * problem is reported in one go: unset environment variables and schema
 * issues together (a key whose variable is unset is reported once, for the
 * variable); with `source`, each names its line and column.
 */
export function parseConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env, source?: SourceMap): GatehouseConfig {
  const envIssues: string[] = [];
  const interpolated = interpolateEnv(raw ?? {}, env, [], envIssues);
  const unset = new Set(envIssues.map((i) => i.slice(0, i.indexOf(': '))));
  const issues = envIssues.map((i) => placed(i, source));
  const result = configSchema.safeParse(interpolated);
  if (!result.success) {
    issues.push(...describeIssues(result.error, source).filter((i) => !unset.has(i.replace(/( \(line \d+, column \d+\))?: .*$/s, ''))));
  }
  if (issues.length > 0 || !result.success) throw new ConfigError('configuration is invalid', issues);
  const config = result.data;
  const cross = crossCheck(config).map((i) => placed(i, source));
  if (cross.length > 0) throw new ConfigError('configuration is invalid', cross);
  return config;
}

/** "a.b.c: message" with the line and column of a.b.c put after the path. */
function placed(issue: string, source: SourceMap | undefined): string {
  const colon = issue.indexOf(': ');
  const path = issue.slice(0, colon);
  return `${path}${where(source, path === '(root)' ? [] : path.split('.'))}${issue.slice(colon)}`;
}

/** Rules that span keys: unique routes; inspected services inspect every connection. */
function crossCheck(config: GatehouseConfig): string[] {
  const issues: string[] = [];
  const seen = new Map<string, string>();
  for (const [name, svc] of Object.entries(config.services)) {
    if (svc.type !== 'echo') issues.push(...inspectIssues(name, svc));
    for (const host of svc.host ?? ['*']) {
      const key = `${host} ${svc.path}`;
      const other = seen.get(key);
      if (other) issues.push(`services.${name}.path: ${svc.path} is already served by service ${other}`);
      else seen.set(key, name);
    }
  }
  return issues;
}

export function parseConfigText(text: string, env: NodeJS.ProcessEnv = process.env, source = 'config'): GatehouseConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, lineCounter: lines });
  if (doc.errors.length > 0) {
    throw new ConfigError(`${source} is not valid YAML`, doc.errors.map((e) => e.message));
  }
  return parseConfig(doc.toJS({ maxAliasCount: 100 }), env, { doc, lines });
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): GatehouseConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`, [], { cause: err });
  }
  return parseConfigText(text, env, file);
}

/** The built-in default; its admin token is made here when GATEHOUSE_ADMIN_TOKEN does not set one. */
export function loadDefaultConfig(env: NodeJS.ProcessEnv = process.env): GatehouseConfig {
  const token = env.GATEHOUSE_ADMIN_TOKEN || randomBytes(24).toString('base64url');
  return parseConfigText(DEFAULT_CONFIG, { ...env, GATEHOUSE_ADMIN_TOKEN: token }, 'built-in default config');
}

/** Services with their names attached, in config order (the order routes are matched in). */
export function servicesOf(config: GatehouseConfig): ServiceConfig[] {
  return Object.entries(config.services).map(([name, svc]) => ({ ...svc, name }) as ServiceConfig);
}
