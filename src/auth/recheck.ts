/**
 * Methods whose credentials can be revoked behind our back (`forward`: the web
 * app's session may be logged out) attach a re-check to the principal they
 * establish. expiry.ts runs it every `interval` for each open connection.
 * Kept beside the principal, not inside it, so the Admission stays plain data.
 */
import type { Principal } from '../admission/types.js';

/** `valid`: still good; `invalid`: revoked → close 1008; `unknown`: could not ask (keep, try again). */
export type RecheckResult = 'valid' | 'invalid' | 'unknown';

export interface CredentialRecheck {
  readonly interval: number;
  recheck(): Promise<RecheckResult>;
  /** The same re-check as plain data, so that a ticket redeemed in another process can rebuild it. */
  readonly portable?: PortableRecheck;
}

export interface PortableRecheck {
  method: string;
  data: Record<string, string>;
}

/** Rebuilds a re-check from its plain data; the auth runtime keeps one per service and method. */
export type RecheckBuilder = (principal: Principal, data: Record<string, string>) => CredentialRecheck | undefined;

export function recheckBuilderKey(service: string, method: string): string {
  return `${service}\0${method}`;
}

const rechecks = new WeakMap<Principal, CredentialRecheck>();

export function setRecheck(principal: Principal, recheck: CredentialRecheck): void {
  rechecks.set(principal, recheck);
}

export function recheckOf(principal: Principal | undefined): CredentialRecheck | undefined {
  return principal ? rechecks.get(principal) : undefined;
}
