/**
 * Password hashes for the `basic` method: scrypt (node:crypto, the default),
 * argon2id (@node-rs/argon2, loaded only when such a hash is used) and bcrypt
 * `$2y$` / `$2b$` / `$2a$` as found in htpasswd files (bcryptjs).
 *
 * scrypt hashes use the PHC string format:
 *   $scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt, base64 unpadded>$<key, base64 unpadded>
 * Verification compares derived keys with crypto.timingSafeEqual.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { GatehouseError } from '../errors.js';

export type HashAlgorithm = 'scrypt' | 'argon2id' | 'bcrypt';

/** 2^15 × 8 × 128 B = 32 MiB per verification: the OWASP minimum for scrypt. */
export const SCRYPT_DEFAULTS = { ln: 15, r: 8, p: 1, keyLength: 32 } as const;

function scrypt(password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

function scryptOptions(ln: number, r: number, p: number): ScryptOptions {
  const N = 2 ** ln;
  return { N, r, p, maxmem: 128 * N * r * p + 16 * 1024 * 1024 };
}

export async function hashPassword(password: string, algorithm: HashAlgorithm = 'scrypt'): Promise<string> {
  switch (algorithm) {
    case 'scrypt': {
      const { ln, r, p, keyLength } = SCRYPT_DEFAULTS;
      const salt = randomBytes(16);
      const key = await scrypt(password, salt, keyLength, scryptOptions(ln, r, p));
      return `$scrypt$ln=${ln},r=${r},p=${p}$${salt.toString('base64').replace(/=+$/, '')}$${key.toString('base64').replace(/=+$/, '')}`;
    }
    case 'argon2id': {
      const argon2 = await import('@node-rs/argon2');
      // Algorithm.Argon2id is a const enum (2) in the typings; isolatedModules forbids using it by name.
      return argon2.hash(password, { algorithm: 2 as never });
    }
    case 'bcrypt': {
      const { default: bcrypt } = await import('bcryptjs');
      return bcrypt.hash(password, 12);
    }
  }
}

/** Which algorithm made this hash, or undefined when the format is not one we accept. */
export function hashAlgorithmOf(hash: string): HashAlgorithm | undefined {
  if (/^\$scrypt\$ln=\d{1,2},r=\d{1,2},p=\d{1,2}\$[A-Za-z0-9+/]{16,}\$[A-Za-z0-9+/]{32,}$/.test(hash)) return 'scrypt';
  if (/^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/.test(hash)) return 'argon2id';
  if (/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) return 'bcrypt';
  return undefined;
}

export class PasswordHashError extends GatehouseError {
  constructor(message: string) {
    super('GH_AUTH_BAD_HASH', message);
  }
}

/** True when `password` matches `hash`. Throws PasswordHashError for an unusable hash. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  switch (hashAlgorithmOf(hash)) {
    case 'scrypt': {
      const [, , params, saltB64, keyB64] = hash.split('$');
      const m = /^ln=(\d+),r=(\d+),p=(\d+)$/.exec(params)!;
      const ln = Number(m[1]), r = Number(m[2]), p = Number(m[3]);
      // Bounds keep a hostile users file from asking for gigabytes per attempt.
      if (ln < 10 || ln > 20 || r < 1 || r > 32 || p < 1 || p > 16) throw new PasswordHashError('scrypt parameters out of range');
      const expected = Buffer.from(keyB64, 'base64');
      const derived = await scrypt(password, Buffer.from(saltB64, 'base64'), expected.length, scryptOptions(ln, r, p));
      return timingSafeEqual(derived, expected);
    }
    case 'argon2id': {
      const argon2 = await import('@node-rs/argon2');
      return argon2.verify(hash, password);
    }
    case 'bcrypt': {
      const { default: bcrypt } = await import('bcryptjs');
      // bcryptjs compares in constant time; $2y$ (PHP/htpasswd) is the same algorithm as $2b$.
      return bcrypt.compare(password, hash.replace(/^\$2y\$/, '$2b$'));
    }
    default:
      throw new PasswordHashError('unsupported password hash format');
  }
}

/**
 * What a hash's verification time depends on: its algorithm and cost
 * parameters (and key length). Two hashes of one shape take the same time to check.
 */
export function hashShape(hash: string): string | undefined {
  const algorithm = hashAlgorithmOf(hash);
  const parts = hash.split('$');
  switch (algorithm) {
    case 'scrypt': return `scrypt:${parts[2]}:${Buffer.from(parts[4], 'base64').length}`;
    case 'argon2id': return `argon2id:${parts[3]}:${Buffer.from(parts[5], 'base64').length}`;
    case 'bcrypt': return `bcrypt:${parts[2]}`;
    default: return undefined;
  }
}

/** A hash of a random password in the given shape (as `hashShape` names it). */
async function hashOfShape(shape: string): Promise<string> {
  const password = randomBytes(16).toString('hex');
  const [algorithm, params, length] = shape.split(':');
  if (algorithm === 'bcrypt') {
    const { default: bcrypt } = await import('bcryptjs');
    return bcrypt.hash(password, Number(params));
  }
  const p = Object.fromEntries(params.split(',').map((kv) => kv.split('='))) as Record<string, string>;
  if (algorithm === 'argon2id') {
    const argon2 = await import('@node-rs/argon2');
    return argon2.hash(password, { algorithm: 2 as never, memoryCost: Number(p.m), timeCost: Number(p.t), parallelism: Number(p.p), outputLen: Number(length) });
  }
  const [ln, r, par] = [Number(p.ln), Number(p.r), Number(p.p)];
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, Number(length), scryptOptions(ln, r, par));
  return `$scrypt$ln=${ln},r=${r},p=${par}$${salt.toString('base64').replace(/=+$/, '')}$${key.toString('base64').replace(/=+$/, '')}`;
}

const dummies = new Map<string, Promise<string>>();

/**
 * A hash of a random password, shaped like `like` (default: scrypt with the
 * default parameters): unknown users are checked against it so that "no such
 * user" takes as long as "wrong password" — with a bcrypt or argon2id users
 * file too. One per shape, made once.
 */
export function dummyPasswordHash(like?: string): Promise<string> {
  const shape = (like !== undefined ? hashShape(like) : undefined) ?? `scrypt:ln=${SCRYPT_DEFAULTS.ln},r=${SCRYPT_DEFAULTS.r},p=${SCRYPT_DEFAULTS.p}:${SCRYPT_DEFAULTS.keyLength}`;
  let dummy = dummies.get(shape);
  if (!dummy) {
    dummy = hashOfShape(shape);
    dummies.set(shape, dummy);
  }
  return dummy;
}
