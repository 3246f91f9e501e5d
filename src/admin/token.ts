/**
 * The admin API's bearer token, compared in constant time: both sides are
 * hashed to 32 bytes first, so neither the length nor the first differing
 * byte of a guess shows in the time the answer takes.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export class BearerToken {
  private readonly digest: Buffer | null;

  /** `token` undefined: no caller is ever authorised. */
  constructor(token: string | undefined) {
    this.digest = token === undefined ? null : sha256(token);
  }

  /** Does the Authorization header carry this token? */
  accepts(authorization: string | undefined): boolean {
    const presented = /^Bearer +(\S+) *$/i.exec(authorization ?? '')?.[1] ?? '';
    // Hashed and compared even when nothing was presented or no token is set: the same work either way.
    const equal = timingSafeEqual(sha256(presented), this.digest ?? sha256(`\0${presented}`));
    return equal && this.digest !== null && presented !== '';
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
