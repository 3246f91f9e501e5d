/**
 * The refusals of authentication and authorization, with their stable reason
 * codes (the audit and metrics key on them). Messages are generic on purpose:
 * a client learns the class of failure, never which part of a secret was wrong.
 */
import { Rejection } from '../admission/types.js';

/** `detail`: for the audit line only (never sent, never a secret). */
export function unauthorized(reason: string, challenge?: string, detail?: string): Rejection {
  return new Rejection(401, reason, 'authentication required', challenge ? { 'WWW-Authenticate': challenge } : {}, detail);
}

export function forbidden(reason: string): Rejection {
  return new Rejection(403, reason, 'forbidden');
}

export function unavailable(reason: string): Rejection {
  return new Rejection(503, reason, 'authentication service unavailable', { 'Retry-After': '5' });
}

export function badRequest(reason: string): Rejection {
  return new Rejection(400, reason, 'bad request');
}

export function tooManyFailures(retryAfterSeconds: number): Rejection {
  return new Rejection(429, 'auth_rate_limited', 'too many failed attempts', { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) });
}
