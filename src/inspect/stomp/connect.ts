/**
 * The client's CONNECT (or STOMP) frame: checked, and rewritten so that the
 * broker sees the identity the gateway verified.
 *
 * - `accept-version` must name a version the gateway speaks (absent: 1.0).
 *   The broker will choose the highest; the client's later frames are read
 *   with that version until CONNECTED says which it chose.
 * - `heart-beat`, when present, must be two decimal numbers; non-zero
 *   intervals below `min_heart_beat` are raised to it (a broker asked for a
 *   heart-beat every millisecond would flood the client and the gateway).
 * - With `connect` configured, the client's `login` and `passcode` are
 *   removed and the configured ones, filled from the verified identity, put
 *   in; `host` replaces the client's when configured. A placeholder without
 *   a value, or a value CONNECT cannot carry (it is never escaped: a newline
 *   would start a header of its own), refuses the connection.
 * - These headers may appear only once.
 */
import { fillTemplate, type PlaceholderIdentity } from '../placeholders.js';
import type { TemplatePart } from '../../config/placeholders.js';
import { STOMP_VERSIONS, type StompFrame, type StompVersion } from './frame.js';
import type { StompPolicy } from './policy.js';
import { refusal, repeatedHeader, type Refusal } from './checks.js';
import { writeFrame } from './writer.js';

const CONNECT_HEADERS = ['accept-version', 'host', 'login', 'passcode', 'heart-beat'];

export interface ConnectOutcome {
  /** What goes to the broker: the frame as received, or rewritten. */
  readonly bytes: Buffer;
  /** The versions the client accepts (those the gateway speaks). */
  readonly accepted: readonly StompVersion[];
}

export function checkConnect(frame: StompFrame, policy: StompPolicy, identity: PlaceholderIdentity | undefined): ConnectOutcome | Refusal {
  const repeated = repeatedHeader(frame, CONNECT_HEADERS);
  if (repeated) return refusal(1002, 'stomp_repeated_header', `repeated header ${repeated}`);
  const offered = frame.header('accept-version');
  const accepted = offered === undefined ? ['1.0' as const] : STOMP_VERSIONS.filter((v) => offered.split(',').some((o) => o.trim() === v));
  if (accepted.length === 0) return refusal(1002, 'stomp_version_unsupported', 'supported protocol versions are 1.0 1.1 1.2');
  const heartBeat = clampHeartBeat(frame.header('heart-beat'), policy.minHeartBeat);
  if (heartBeat === null) return refusal(1002, 'stomp_bad_heart_beat', 'heart-beat must be two numbers');
  const inject = policy.connect;
  if (inject === undefined && heartBeat === frame.header('heart-beat')) return { bytes: frame.raw, accepted };

  const headers: string[] = [];
  const h = frame.headers;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i];
    if (inject && (name === 'login' || name === 'passcode' || (name === 'host' && inject.host))) continue;
    headers.push(name, name === 'heart-beat' ? heartBeat! : h[i + 1]);
  }
  if (inject) {
    for (const [name, parts] of [['login', inject.login], ['passcode', inject.passcode], ['host', inject.host]] as Array<[string, TemplatePart[] | undefined]>) {
      if (parts === undefined) continue;
      const value = fillTemplate(parts, identity);
      if (value === undefined) return refusal(1008, 'stomp_identity_unavailable', `no ${name} for this identity`);
      headers.push(name, value);
    }
  }
  const bytes = writeFrame(frame.command, headers, frame.body, '1.0');
  if (bytes === undefined) return refusal(1008, 'stomp_identity_unavailable', 'identity cannot be carried in CONNECT');
  return { bytes, accepted };
}

/** The heart-beat header with short intervals raised; undefined when absent, null when malformed. */
function clampHeartBeat(value: string | undefined, min: number): string | undefined | null {
  if (value === undefined) return undefined;
  const m = /^([0-9]{1,9}),([0-9]{1,9})$/.exec(value.trim());
  if (!m) return null;
  const raise = (n: number): number => (n === 0 ? 0 : Math.max(n, min));
  const out = `${raise(Number(m[1]))},${raise(Number(m[2]))}`;
  return out === value ? value : out;
}
