/**
 * Turns Node's IncomingMessage into the transport-neutral AdmissionRequest the
 * pipeline reads. The path is split from the query without decoding.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AdmissionRequest, TlsInfo } from '../admission/types.js';
import { clientAddressOf, hopOf } from './listener.js';

export function splitTarget(url: string): { path: string; query: URLSearchParams } {
  const q = url.indexOf('?');
  if (q < 0) return { path: url, query: new URLSearchParams() };
  return { path: url.slice(0, q), query: new URLSearchParams(url.slice(q + 1)) };
}

/** The path of a request target (no query), as `splitTarget` gives it, without parsing the query. */
export function targetPath(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/**
 * `offeredProtocols`: the Sec-WebSocket-Protocol list when the transport has
 * already parsed it with the admission limits (the WebSocket codec), so the
 * header is parsed once per request.
 */
export function toAdmissionRequest(req: IncomingMessage, transport: AdmissionRequest['transport'], offeredProtocols?: readonly string[]): AdmissionRequest {
  return new NodeAdmissionRequest(req, transport, offeredProtocols);
}

/**
 * An AdmissionRequest read from Node's IncomingMessage. What few checks need
 * (the parsed query string, the local port) is computed on first use: parsing
 * the query and asking the kernel for the socket name cost on every handshake.
 */
class NodeAdmissionRequest implements AdmissionRequest {
  readonly method: string;
  readonly url: string;
  readonly path: string;
  readonly httpVersion: string;
  readonly headers: IncomingMessage['headers'];
  readonly rawHeaders: string[];
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly peerAddress: string;
  readonly secure: boolean;
  readonly tls: TlsInfo | undefined;
  readonly offeredProtocols: readonly string[] | undefined;
  private queryValue: URLSearchParams | undefined;
  private readonly socket: IncomingMessage['socket'];

  constructor(req: IncomingMessage, readonly transport: AdmissionRequest['transport'], offeredProtocols: readonly string[] | undefined) {
    const url = req.url ?? '/';
    const socket = this.socket = req.socket;
    // A hop's own connection is between gateways: the client's is what counts.
    const hop = hopOf(req);
    const secure = hop ? hop.secure : (socket as TLSSocket).encrypted === true;
    const peer = socket.remoteAddress ?? '';
    // The listener resolved the client (PROXY header, trusted proxies); else the socket peer.
    const client = clientAddressOf(req);
    this.method = req.method ?? 'GET';
    this.url = url;
    this.path = targetPath(url);
    this.httpVersion = req.httpVersion;
    this.headers = req.headers;
    this.rawHeaders = req.rawHeaders;
    this.remoteAddress = client?.address ?? peer;
    this.remotePort = client?.port ?? socket.remotePort ?? 0;
    this.peerAddress = peer;
    this.secure = secure;
    this.tls = hop ? hop.tls : secure ? tlsInfo(socket as TLSSocket) : undefined;
    this.offeredProtocols = offeredProtocols;
  }

  get query(): URLSearchParams {
    if (this.queryValue === undefined) {
      const q = this.url.indexOf('?');
      this.queryValue = new URLSearchParams(q < 0 ? '' : this.url.slice(q + 1));
    }
    return this.queryValue;
  }

  get localPort(): number {
    return this.socket.localPort ?? 0;
  }
}

function tlsInfo(socket: TLSSocket): TlsInfo {
  const info: TlsInfo = {
    protocol: socket.getProtocol?.() ?? null,
    servername: (socket as TLSSocket & { servername?: string | false }).servername || null,
    authorized: socket.authorized === true,
  };
  if (socket.authorized) {
    const cert = socket.getPeerCertificate();
    if (cert && cert.subject) {
      info.subject = { ...cert.subject } as unknown as Record<string, string>;
      info.fingerprint256 = cert.fingerprint256;
    }
  }
  return info;
}
