/**
 * Client-side helpers: an independent WebSocket client (`ws`) toward the
 * gateway, with the outcome of its handshake and of its close as promises.
 */
import { WebSocket } from 'ws';

/** Opens a `ws` client; resolves once open, rejects with the HTTP status when the handshake is refused. */
export function openClient(url: string, protocols: string[] = [], options: { maxPayload?: number } = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { maxPayload: options.maxPayload ?? 64 * 1024 * 1024 });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      reject(Object.assign(new Error(`handshake refused with ${res.statusCode}`), { status: res.statusCode }));
      res.resume();
      ws.terminate();
    });
    ws.once('error', (err) => reject(err));
  });
}

/** The HTTP status a refused handshake got. */
export async function refusedStatus(url: string, protocols: string[] = []): Promise<number> {
  try {
    const ws = await openClient(url, protocols);
    ws.terminate();
  } catch (err) {
    const status = (err as { status?: number }).status;
    if (status !== undefined) return status;
    throw err;
  }
  throw new Error('the handshake was accepted');
}

export interface Closed {
  code: number;
  reason: string;
}

/** Resolves when the client sees the connection close. */
export function closedOf(ws: WebSocket): Promise<Closed> {
  if (ws.readyState === WebSocket.CLOSED) throw new Error('already closed');
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

/** Sends one message and resolves with the next message received. */
export function roundTrip(ws: WebSocket, data: string | Buffer): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve, reject) => {
    ws.once('message', (d, isBinary) => resolve({ data: d as Buffer, isBinary }));
    ws.send(data, { binary: typeof data !== 'string' }, (err) => { if (err) reject(err); });
  });
}

/** The next message the client receives. */
export function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) => ws.once('message', (d, isBinary) => resolve({ data: d as Buffer, isBinary })));
}
