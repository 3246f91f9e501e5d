/**
 * HTTP Basic authentication (RFC 7617) against a users file. Wrong password
 * and unknown user take the same time and give the same answer (401 with
 * `WWW-Authenticate: Basic realm="…"`); a user name that keeps failing from
 * one address is refused there with 429 before any hash is computed.
 */
import type { AdmissionContext } from '../admission/types.js';
import type { BasicMethodConfig } from '../config/auth.js';
import { addressKey } from '../http/cidr.js';
import { findAuthorization } from './credentials.js';
import { dummyPasswordHash, hashShape, verifyPassword } from './passwords.js';
import { tooManyFailures, unauthorized } from './rejections.js';
import type { FailureLimit } from './runtime.js';
import { NONE, type AuthOutcome, type Authenticator } from './types.js';
import { loadUsersFile } from './users-file.js';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const MAX_USER = 256;
const MAX_PASSWORD = 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export type BasicCredentials = { user: string; password: string };

/** Decodes `Basic` credentials; undefined when they are not valid base64 of UTF-8 `user:password`. */
export function decodeBasic(value: string): BasicCredentials | undefined {
  if (value.length > 4 * Math.ceil((MAX_USER + MAX_PASSWORD + 1) * 4 / 3 / 4) || !BASE64.test(value)) return undefined;
  let text: string;
  try {
    text = utf8.decode(Buffer.from(value, 'base64'));
  } catch {
    return undefined;
  }
  const colon = text.indexOf(':');
  if (colon <= 0) return undefined;
  const user = text.slice(0, colon);
  const password = text.slice(colon + 1);
  if (user.length > MAX_USER || password.length > MAX_PASSWORD || /[\x00-\x1f\x7f]/.test(user)) return undefined;
  return { user, password };
}

export class BasicAuthenticator implements Authenticator {
  readonly method = 'basic';
  readonly challenge: string;
  private readonly users: Map<string, string>;
  /** What an unknown user's password is checked against. */
  readonly timingDummy: Promise<string>;

  constructor(private readonly config: BasicMethodConfig, private readonly userFailures: FailureLimit) {
    this.challenge = `Basic realm="${config.realm}", charset="UTF-8"`;
    this.users = loadUsersFile(config.users_file);
    // Made now, not on the first unknown user; shaped like the file's hashes, so timing does not tell names apart.
    // A shape the hash library refuses (the file's hashes would fail alike) falls back to the default.
    this.timingDummy = dummyPasswordHash(mostCommonShape(this.users.values())).catch(() => dummyPasswordHash());
  }


  async authenticate(ctx: AdmissionContext): Promise<AuthOutcome> {
    const auth = findAuthorization(ctx.request);
    if (auth.kind !== 'found' || auth.scheme !== 'basic') return NONE;
    const creds = decodeBasic(auth.value);
    if (!creds) return { kind: 'refused', rejection: unauthorized('basic_malformed', this.challenge), failed: true };
    // Per user name *and* address: a user name blocked everywhere would let anyone lock its owner out.
    const userKey = `basic:${addressKey(ctx.request.remoteAddress)}:${creds.user}`;
    const { counter, limits } = this.userFailures;
    const wait = await counter.reserve(userKey, limits);
    if (wait > 0) return { kind: 'refused', rejection: tooManyFailures(wait / 1000), failed: false };
    const stored = this.users.get(creds.user);
    let ok = false;
    try {
      ok = await verifyPassword(creds.password, stored ?? await this.timingDummy) && stored !== undefined;
    } finally {
      await counter.settle(userKey, !ok, limits);
    }
    if (!ok) return { kind: 'refused', rejection: unauthorized('basic_invalid', this.challenge), failed: true };
    return {
      kind: 'ok',
      principal: { id: creds.user, roles: [...(this.config.roles[creds.user] ?? [])], claims: {}, method: 'basic' },
    };
  }
}

/** A hash of the shape most of the file's hashes have (undefined for an empty file). */
function mostCommonShape(hashes: Iterable<string>): string | undefined {
  const counts = new Map<string, { n: number; hash: string }>();
  let best: { n: number; hash: string } | undefined;
  for (const hash of hashes) {
    const shape = hashShape(hash) ?? '';
    const c = counts.get(shape) ?? { n: 0, hash };
    c.n++;
    counts.set(shape, c);
    if (!best || c.n > best.n) best = c;
  }
  return best?.hash;
}
