/**
 * TLS for a listener: PEM certificate and key, more certificates chosen by SNI,
 * TLS 1.2 minimum (or 1.3), optional or required client certificates (mTLS)
 * verified against a CA file, a handshake timeout, client-initiated
 * renegotiation refused, and certificate reload — when a file changes, and on
 * a configuration reload (SIGHUP), which may also name other files — without
 * touching open connections: the default context is swapped with
 * `server.setSecureContext`, the SNI contexts by replacing the map the
 * SNICallback reads. A reload that fails (unreadable file, key not matching the
 * certificate) keeps the contexts in use: logged when a file changed, refused
 * with the reason when a configuration reload asked for it.
 */
import { readFileSync, watchFile, unwatchFile } from 'node:fs';
import type { Server as HttpsServer, ServerOptions as HttpsServerOptions } from 'node:https';
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { TlsConfig } from '../config/listener.js';
import { GatehouseError } from '../errors.js';

/** Certificate or key files could not be read or do not fit together. */
export class TlsConfigError extends GatehouseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GH_TLS_CONFIG', message, options);
  }
}

interface LoadedContexts {
  /** Options of the default context, as setSecureContext wants them. */
  defaults: { cert: Buffer; key: Buffer; ca?: Buffer; minVersion: 'TLSv1.2' | 'TLSv1.3' };
  exact: Map<string, SecureContext>;
  /** `*.example.com` entries keyed by `example.com`. */
  wildcard: Map<string, SecureContext>;
}

/** How often watched certificate files are polled (fs.watchFile; survives rename-and-replace). */
const WATCH_INTERVAL_MS = 1000;

export class TlsContexts {
  private current: LoadedContexts;
  private server?: HttpsServer;
  private watched: string[] = [];
  private pending?: NodeJS.Timeout;
  /** Counts successful reloads (tests and metrics read it). */
  generation = 0;

  constructor(private config: TlsConfig, private readonly log?: Logger) {
    this.current = load(config);
  }

  /** Options for `https.createServer`. */
  serverOptions(): HttpsServerOptions {
    const c = this.config;
    return {
      ...this.current.defaults,
      maxVersion: 'TLSv1.3',
      requestCert: c.client_certificate !== 'none',
      // Verification failures are enforced in `attach` (Node would destroy the socket silently; we audit it).
      rejectUnauthorized: false,
      handshakeTimeout: c.handshake_timeout,
      // Only with SNI entries: an SNICallback makes OpenSSL stop every
      // handshake for a round trip into JS (the certificate callback), which
      // a listener with one certificate does not need.
      ...(c.sni.length > 0 ? { SNICallback: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => cb(null, this.contextFor(servername)) } : {}),
    };
  }

  /**
   * Hook the server: client certificates enforced, renegotiation off, reload
   * on file change (if configured). `onRefused` hears of every connection
   * dropped for its client certificate.
   */
  attach(server: HttpsServer, onRefused?: (socket: TLSSocket, code: string) => void): void {
    this.server = server;
    const mode = this.config.client_certificate;
    // Prepended: runs before the HTTP server starts reading from the connection.
    server.prependListener('secureConnection', (socket: TLSSocket) => {
      // CVE-2011-1473: a client may not make the server redo the expensive handshake.
      socket.disableRenegotiation();
      if (mode === 'none' || socket.authorized) return;
      const presented = Object.keys(socket.getPeerCertificate() ?? {}).length > 0;
      // required: no certificate or an unverifiable one; optional: an unverifiable one.
      if (mode === 'required' || presented) {
        onRefused?.(socket, presented ? String(socket.authorizationError ?? 'UNVERIFIED') : 'NO_CERTIFICATE');
        socket.destroy();
      }
    });
    this.watch();
  }

  detach(): void {
    this.unwatch();
    if (this.pending) clearTimeout(this.pending);
  }

  /** Re-read every file and swap the contexts; false (old ones kept) on failure. */
  reload(why = 'reload'): boolean {
    let next: LoadedContexts;
    try {
      next = load(this.config);
    } catch (err) {
      this.log?.error({ err, why }, 'TLS reload failed; keeping the certificates in use');
      return false;
    }
    this.swap(this.config, next, why);
    return true;
  }

  /**
   * A configuration reload: read the files `config` names now (throws
   * TlsConfigError when one cannot be used, nothing changed) and return the
   * step that puts them in service, to run once the whole reload is known to succeed.
   */
  prepare(config: TlsConfig): () => void {
    const next = load(config);
    return () => this.swap(config, next, 'configuration reload');
  }

  private swap(config: TlsConfig, next: LoadedContexts, why: string): void {
    const rewatch = config !== this.config;
    this.config = config;
    this.current = next;
    this.server?.setSecureContext(next.defaults);
    if (rewatch && this.server) {
      this.unwatch();
      this.watch();
    }
    this.generation++;
    this.log?.info({ why, generation: this.generation }, 'TLS certificates reloaded');
  }

  private watch(): void {
    if (!this.config.watch) return;
    this.watched = this.files();
    for (const f of this.watched) {
      watchFile(f, { interval: WATCH_INTERVAL_MS, persistent: false }, (cur, prev) => {
        if (cur.mtimeMs !== prev.mtimeMs || cur.size !== prev.size || cur.ino !== prev.ino) this.scheduleReload();
      });
    }
  }

  private unwatch(): void {
    for (const f of this.watched) unwatchFile(f);
    this.watched = [];
  }

  /** The context for a server name: exact SNI entry, then `*.` entry, else the default. */
  contextFor(servername: string): SecureContext | undefined {
    const name = servername.toLowerCase().replace(/\.$/, '');
    const exact = this.current.exact.get(name);
    if (exact) return exact;
    const dot = name.indexOf('.');
    if (dot > 0) {
      const wild = this.current.wildcard.get(name.slice(dot + 1));
      if (wild) return wild;
    }
    return undefined;
  }

  private scheduleReload(): void {
    // A certificate and its key are usually replaced one after the other: wait for both.
    if (this.pending) clearTimeout(this.pending);
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.reload('file changed');
    }, 200);
    this.pending.unref();
  }

  private files(): string[] {
    const c = this.config;
    const f = [c.cert, c.key, ...c.sni.flatMap((s) => [s.cert, s.key])];
    if (c.ca) f.push(c.ca);
    return [...new Set(f)];
  }

}

/** Read every file of a TLS config and build its contexts; throws TlsConfigError naming the file. */
function load(c: TlsConfig): LoadedContexts {
  const ca = c.ca !== undefined ? readPem(c.ca, 'ca') : undefined;
  const defaults = { cert: readPem(c.cert, 'cert'), key: readPem(c.key, 'key'), ...(ca ? { ca } : {}), minVersion: c.min_version };
  tryContext(defaults, c.cert);
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  for (const entry of c.sni) {
    const ctx = tryContext({
      cert: readPem(entry.cert, `sni ${entry.servername} cert`),
      key: readPem(entry.key, `sni ${entry.servername} key`),
      ...(ca ? { ca } : {}),
      minVersion: c.min_version,
    }, entry.cert);
    if (entry.servername.startsWith('*.')) wildcard.set(entry.servername.slice(2), ctx);
    else exact.set(entry.servername, ctx);
  }
  return { defaults, exact, wildcard };
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new TlsConfigError(`cannot read TLS ${what} file ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function tryContext(options: Parameters<typeof createSecureContext>[0], file: string): SecureContext {
  try {
    return createSecureContext(options);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const words = OPENSSL_IN_WORDS[e.code ?? ''];
    throw new TlsConfigError(`TLS certificate ${file} cannot be used: ${words ? `${words} (${e.message})` : e.message}`, { cause: err });
  }
}

/** OpenSSL's errors for files that are not what the config says, in words (the OpenSSL text follows in brackets). */
const OPENSSL_IN_WORDS: Record<string, string> = {
  ERR_OSSL_X509_KEY_VALUES_MISMATCH: 'the private key does not belong to this certificate',
  ERR_OSSL_PEM_NO_START_LINE: 'a file is not PEM (no "-----BEGIN …" line): is the certificate or the key the wrong file?',
  ERR_OSSL_UNSUPPORTED: 'the private key file is not a PEM private key OpenSSL can read',
  ERR_OSSL_BAD_DECRYPT: 'the private key is encrypted: give Gatehouse an unencrypted key',
  ERR_OSSL_SSL_EE_KEY_TOO_SMALL: 'the certificate\'s key is too small for OpenSSL\'s security level',
  ERR_OSSL_SSL_CA_MD_TOO_WEAK: 'the certificate is signed with a digest OpenSSL refuses as too weak',
};
