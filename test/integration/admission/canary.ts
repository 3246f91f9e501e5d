/** A connection that must keep round-tripping messages while a test attacks the gateway. */
import assert from 'node:assert/strict';
import WebSocket, { type ClientOptions } from 'ws';

export class Canary {
  private n = 0;
  private constructor(readonly ws: WebSocket) {}

  static open(url: string, options: ClientOptions & { protocols?: string[] } = {}): Promise<Canary> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options.protocols ?? [], { localAddress: '127.0.0.2', ...options });
      ws.once('open', () => resolve(new Canary(ws)));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`canary refused: ${res.statusCode}`)));
    });
  }

  /** Send a message and wait for its echo. */
  roundTrip(): Promise<void> {
    const text = `canary ${++this.n}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('canary: no echo within 5 s')), 5000);
      const onMessage = (data: Buffer): void => {
        if (data.toString() !== text) return;
        clearTimeout(timer);
        this.ws.off('message', onMessage);
        resolve();
      };
      this.ws.on('message', onMessage);
      this.ws.send(text);
    });
  }

  /** Round-trip every `ms` until `until` settles; throws if any round trip failed. */
  async during<T>(until: Promise<T>, ms = 50): Promise<T> {
    let settled = false;
    let rounds = 0;
    const loop = (async () => {
      while (!settled) {
        await this.roundTrip();
        rounds++;
        await new Promise((r) => setTimeout(r, ms));
      }
    })();
    try {
      return await until;
    } finally {
      settled = true;
      await loop;
      assert.ok(rounds > 0, 'the canary made at least one round trip during the attack');
    }
  }

  close(): void {
    this.ws.terminate();
  }
}
