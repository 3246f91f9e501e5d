/**
 * TLS material for reaching a backend, read once when the service is built
 * (a missing file is a configuration error at start or reload, not a 502 per
 * connection). Verification is always on: `rejectUnauthorized` is never false.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { BackendTlsConfig } from '../config/backends.js';
import { ConfigError } from '../errors.js';

function readPem(file: string, what: string, service: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError('configuration is invalid', [`services.${service}.tls.${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`], { cause: err });
  }
}

/** Options for `tls.connect` to `host`; `servername` is the name the certificate must carry. */
export function backendTlsOptions(tls: BackendTlsConfig | undefined, host: string, service: string): ConnectionOptions {
  const opts: ConnectionOptions = {
    rejectUnauthorized: true,
    // SNI must not carry an IP address (RFC 6066 §3); the certificate check still uses `host`.
    servername: tls?.servername ?? (isIp(host) ? undefined : host),
  };
  if (tls?.ca) opts.ca = tls.ca.map((f) => readPem(f, 'ca', service));
  if (tls?.cert) opts.cert = readPem(tls.cert, 'cert', service);
  if (tls?.key) opts.key = readPem(tls.key, 'key', service);
  return opts;
}

function isIp(host: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(host) || host.includes(':');
}
