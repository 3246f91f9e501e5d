/**
 * Transport-neutral types of the admission pipeline. The WebSocket upgrade and
 * the fallback "open" request both describe themselves as an AdmissionRequest
 * and get back either an Admission or a Rejection.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ServiceConfig } from '../config/schema.js';

export interface TlsInfo {
  protocol: string | null;
  servername: string | null;
  /** true when a client certificate was presented and verified against the CA */
  authorized: boolean;
  /** Subject of the verified client certificate, e.g. { CN: 'device-17', O: 'Acme' } */
  subject?: Record<string, string>;
  fingerprint256?: string;
}

export interface AdmissionRequest {
  transport: 'websocket' | 'fallback';
  method: string;
  /** The raw request target as sent. */
  url: string;
  /** Normalised path used for routing (no query). */
  path: string;
  query: URLSearchParams;
  httpVersion: string;
  headers: IncomingHttpHeaders;
  /** Header names and values in arrival order, duplicates kept. */
  rawHeaders: string[];
  /** Socket peer (or the client named by a trusted proxy). */
  remoteAddress: string;
  remotePort: number;
  /** The immediate TCP peer, whatever proxies say. */
  peerAddress: string;
  localPort: number;
  secure: boolean;
  tls?: TlsInfo;
  /**
   * Sec-WebSocket-Protocol, already parsed by the transport with the same
   * grammar, limits and refusals as the admission check (the WebSocket codec
   * does, before admission runs). Absent: the check parses the header itself.
   */
  offeredProtocols?: readonly string[];
}

/** Who is calling, as established by an authenticator. */
export interface Principal {
  id: string;
  roles: string[];
  claims: Record<string, unknown>;
  /** Epoch milliseconds after which the credential is no longer valid. */
  expiresAt?: number;
  /** Which authenticator established it (basic, jwt, forward, ticket, mtls). */
  method: string;
}

export interface Admission {
  /** Unique id of this connection or fallback session, for logs. */
  id: string;
  service: ServiceConfig;
  client: { address: string; port: number };
  /** The serialised origin (RFC 6454) or null when absent. */
  origin: string | null;
  /** The chosen subprotocol, '' when none. */
  protocol: string;
  /** Subprotocols the client offered (after removing credential carriers). */
  offeredProtocols: readonly string[];
  principal?: Principal;
  tls?: TlsInfo;
  /**
   * The request it was admitted on. Present while the connection is being set
   * up (service.open reads it, e.g. for the identity headers sent to the
   * backend); the front door drops it once the transport is open, so an idle
   * connection does not keep the whole request (headers, query, raw headers)
   * alive. What later stages need is kept elsewhere: a `forward` principal's
   * revalidation holds exactly the credentials it re-sends.
   */
  request?: AdmissionRequest;
  /** Undo what admission reserved (connection slots). Idempotent. */
  release(): void;
}

/** A refusal: HTTP status, a stable reason code, headers to add. */
export class Rejection {
  readonly status: number;
  readonly reason: string;
  readonly headers: Record<string, string>;
  readonly message: string;
  constructor(status: number, reason: string, message?: string, headers: Record<string, string> = {}) {
    this.status = status;
    this.reason = reason;
    this.message = message ?? reason;
    this.headers = headers;
  }
}

/** The state an admission check reads and fills in. */
export interface AdmissionContext {
  readonly request: AdmissionRequest;
  readonly service: ServiceConfig;
  origin: string | null;
  protocol: string;
  offeredProtocols: string[];
  principal?: Principal;
  /**
   * Register an undo action run when the connection ends or a later check
   * rejects. With `arg`, `fn(arg)` is run: one function per check and a value
   * per connection cost an admitted connection less than a closure each.
   */
  onRelease<T>(fn: (arg: T) => void, arg: T): void;
  onRelease(fn: () => void): void;
}

/** One small, independent check. Returns a Rejection to stop the pipeline. */
export interface AdmissionCheck {
  readonly name: string;
  check(ctx: AdmissionContext): Rejection | undefined | Promise<Rejection | undefined>;
}
