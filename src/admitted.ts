/**
 * The admitted identity: the record admission produces and everything above
 * the ground floor reads (transports, the Channel, the relay, services), so
 * that none of them imports admission. It says who came in (principal, client
 * address, TLS), to which service, from which origin, speaking which
 * subprotocol, and how to give back what admission reserved. While the
 * connection is being set up it also carries the request it came in on.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ServiceConfig } from './config/schema.js';

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
  /** How the request came: a WebSocket upgrade, a fallback open, or a request for a ticket. */
  transport: 'websocket' | 'fallback' | 'ticket';
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
  /**
   * Where its credential was: `headers` (Authorization or Cookie, which a
   * client sends again with each request: a fallback session's later requests
   * are checked against them), `request` (the opening request's own — a query
   * parameter, a subprotocol entry, a single-use ticket — which later requests
   * never carry). Unset counts as `headers`.
   */
  carrier?: 'headers' | 'request';
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
