/**
 * A password hash for tests whose subject is not password hashing (a users
 * file that only gives a service its principals): scrypt at the lowest cost
 * the gateway accepts (ln=10: 1 MiB, a few ms), in the gateway's own format.
 * The default (ln=15: 32 MiB per verification) took over 10 s per login at
 * load 25, so a test that logs in a handful of times ran out of its time.
 * Password hashing itself is tested with the real defaults (test/unit/auth).
 */
import { randomBytes, scryptSync } from 'node:crypto';
import { hashAlgorithmOf } from '../../src/auth/passwords.js';

export function cheapPasswordHash(password: string): string {
  const salt = randomBytes(16);
  const key = scryptSync(password, salt, 32, { N: 2 ** 10, r: 8, p: 1 });
  const hash = `$scrypt$ln=10,r=8,p=1$${salt.toString('base64').replace(/=+$/, '')}$${key.toString('base64').replace(/=+$/, '')}`;
  if (hashAlgorithmOf(hash) !== 'scrypt') throw new Error('not a hash the gateway reads');
  return hash;
}
