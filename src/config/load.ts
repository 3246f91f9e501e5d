/**
 * Loads configuration: YAML text → ${ENV} interpolation → schema validation.
 * Every problem is reported with the dotted path of the key it concerns.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { configSchema, type GatehouseConfig, type ServiceConfig } from './schema.js';
import { DEFAULT_CONFIG } from './default.js';

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

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.length === 0 ? '(root)' : path.map(String).join('.');
}

function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => {
    let msg = i.message;
    if (i.code === 'unrecognized_keys') msg = `unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    return `${formatPath(i.path)}: ${msg}`;
  });
}

/** Validate an already-parsed object (YAML/JSON) into a typed config. */
export function parseConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env): GatehouseConfig {
  const envIssues: string[] = [];
  const interpolated = interpolateEnv(raw ?? {}, env, [], envIssues);
  if (envIssues.length > 0) throw new ConfigError('configuration is invalid', envIssues);
  const result = configSchema.safeParse(interpolated);
  if (!result.success) throw new ConfigError('configuration is invalid', formatIssues(result.error));
  const config = result.data;
  const issues = crossCheck(config);
  if (issues.length > 0) throw new ConfigError('configuration is invalid', issues);
  return config;
}

/** Rules that span keys: unique routes. */
function crossCheck(config: GatehouseConfig): string[] {
  const issues: string[] = [];
  const seen = new Map<string, string>();
  for (const [name, svc] of Object.entries(config.services)) {
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
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(`${source} is not valid YAML`, doc.errors.map((e) => e.message));
  }
  return parseConfig(doc.toJS({ maxAliasCount: 100 }), env);
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
