/**
 * What an authentication method is: something that looks for its own kind of
 * credentials and says "none here", "this is who it is", or "refused".
 * The chain check (authenticate.ts) runs them in order.
 */
import type { AdmissionContext, Principal, Rejection } from '../admission/types.js';

export type AuthOutcome =
  /** No credentials of this kind: the next method may try. */
  | { kind: 'none' }
  | { kind: 'ok'; principal: Principal }
  /**
   * Credentials were there and were refused. `failed` marks a failed attempt
   * (counted against the client address); refusals that are not the client's
   * fault (503) leave it false. A method that limits more (basic, per user
   * name) keeps that count itself.
   */
  | { kind: 'refused'; rejection: Rejection; failed: boolean };

export interface Authenticator {
  /** Method name, as in `Principal.method` and config `type`. */
  readonly method: string;
  /** The challenge a 401 names in WWW-Authenticate, if the method has one. */
  readonly challenge?: string;
  authenticate(ctx: AdmissionContext): AuthOutcome | Promise<AuthOutcome>;
}

/** A service's methods run in order (`AuthChain`): who is calling, or why not. */
export interface CredentialChain {
  run(ctx: AdmissionContext): Promise<Principal | Rejection>;
}

export const NONE: AuthOutcome = Object.freeze({ kind: 'none' });
