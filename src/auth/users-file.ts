/**
 * The users file of the `basic` method: one `name:hash` per line, `#` comments
 * and blank lines ignored — the htpasswd layout, so `htpasswd -B` files work.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import { hashAlgorithmOf } from './passwords.js';

export function parseUsersFile(text: string, source: string): Map<string, string> {
  const users = new Map<string, string>();
  const issues: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const colon = trimmed.indexOf(':');
    const name = colon > 0 ? trimmed.slice(0, colon) : '';
    const hash = colon > 0 ? trimmed.slice(colon + 1) : '';
    // Never echo the line: it holds a hash.
    if (!name) issues.push(`${source}:${i + 1}: expected name:hash`);
    else if (!hashAlgorithmOf(hash)) issues.push(`${source}:${i + 1}: unsupported hash for user ${JSON.stringify(name)} (use scrypt, argon2id or bcrypt $2y$/$2b$)`);
    else if (users.has(name)) issues.push(`${source}:${i + 1}: user ${JSON.stringify(name)} is listed twice`);
    else users.set(name, hash);
  });
  if (issues.length > 0) throw new ConfigError(`users file ${source} is invalid`, issues);
  return users;
}

export function loadUsersFile(file: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read users file ${file}: ${(err as Error).message}`, [], { cause: err });
  }
  return parseUsersFile(text, file);
}
