/**
 * Interop with `ws`'s perMessageDeflate, every RFC 7692 parameter, both
 * roles: `ws` clients offering each parameter against services with each
 * kind of setting (echo), and `ws` servers answering each way as the backend
 * of a `websocket` service. Messages are chosen so that a side that broke its
 * agreement fails: a JSON body that repeats 2 KiB apart (a back-reference past
 * a 9- or 10-bit window) and the same message several times in a row (a
 * back-reference into the previous message where context takeover was not
 * agreed). Through the relay the gateway's own zlib byte counters show, per
 * direction, whether frames passed as they were or were compressed again.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type net from 'node:net';
import WebSocket, { WebSocketServer, type PerMessageDeflateOptions } from 'ws';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { zlibStats } from '../../../src/websocket/zlib-pool.js';

/** 8 KiB of JSON whose 1.5 KiB random block (hex) repeats 2 KiB apart: compressed well only with a window of 2 KiB or more. */
function message(seq: number): string {
  const block = randomBytes(768).toString('hex');
  const item = (i: number): string => JSON.stringify({ seq, i, block }).padEnd(2048, ' ');
  return `[${[0, 1, 2, 3].map(item).join(',')}]`.slice(0, 8192);
}

/** Gateway settings a service may take (all four parameters, both ways). */
const SETTINGS: Record<string, true | Record<string, unknown>> = {
  defaults: true,
  takeover: { server_no_context_takeover: false, client_no_context_takeover: false },
  windows: { server_max_window_bits: 10, client_max_window_bits: 9 },
};

/** What a `ws` end is configured with (both roles take the same options). */
const WS_OPTIONS: Record<string, PerMessageDeflateOptions | false> = {
  defaults: {},
  serverNoContextTakeover: { serverNoContextTakeover: true },
  clientNoContextTakeover: { clientNoContextTakeover: true },
  serverMaxWindowBits: { serverMaxWindowBits: 10 },
  clientMaxWindowBits: { clientMaxWindowBits: 10 },
  all: { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 9 },
  declines: false,
  // Refuses server_no_context_takeover (ws answers such an offer 400).
  keepsContext: { serverNoContextTakeover: false },
};

let gw: TestGateway;
const backends: WebSocketServer[] = [];
/** The extensions each backend's latest connection agreed, by backend name. */
const backendAgreed = new Map<string, string>();
/** The latest backend connection, by backend name (the tests send from it). */
const backendSocket = new Map<string, WebSocket>();

before(async () => {
  const services: Record<string, unknown> = {};
  for (const [name, compression] of Object.entries(SETTINGS)) {
    services[`echo-${name}`] = { path: `/echo/${name}`, type: 'echo', compression, allow_missing_origin: true };
  }
  for (const [name, options] of Object.entries(WS_OPTIONS)) {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: options === false ? false : { ...options, threshold: 0 } });
    await once(wss, 'listening');
    // ws reports only the extension's name: the parameters are read from the 101 it writes.
    wss.on('headers', (headers) => {
      const line = headers.find((h) => /^sec-websocket-extensions:/i.test(h));
      backendAgreed.set(name, line === undefined ? '' : line.slice(line.indexOf(':') + 1).trim());
    });
    wss.on('connection', (s) => {
      backendSocket.set(name, s);
      const header = backendAgreed.get(name) ?? '';
      s.on('message', (d, isBinary) => { if (String(d) === 'agreed?') s.send(header); else if (!isBinary) s.send(`got ${String(d).length}`); });
    });
    backends.push(wss);
    const port = (wss.address() as { port: number }).port;
    for (const setting of ['defaults', 'takeover']) {
      services[`relay-${setting}-${name}`] = {
        path: `/relay/${setting}/${name}`, type: 'websocket', backend: `ws://127.0.0.1:${port}/`, compression: SETTINGS[setting], allow_missing_origin: true,
      };
    }
  }
  gw = await startGateway({ services, limits: { message_rate: 100_000, byte_rate: '64MiB', handshake_rate: 1000, handshake_burst: 1000 } });
});

after(async () => {
  await gw.stop();
  for (const wss of backends) await new Promise<void>((resolve) => wss.close(() => resolve()));
});

async function open(path: string, options: PerMessageDeflateOptions): Promise<{ ws: WebSocket; socket: net.Socket; extensions: string }> {
  const ws = new WebSocket(gw.url(path), { perMessageDeflate: { ...options, threshold: 0 } });
  const upgraded = once(ws, 'upgrade') as Promise<[http.IncomingMessage]>;
  await once(ws, 'open');
  const [res] = await upgraded;
  return { ws, socket: res.socket as net.Socket, extensions: String(res.headers['sec-websocket-extensions'] ?? '') };
}

async function roundTrip(ws: WebSocket, text: string): Promise<string> {
  const got = new Promise<string>((resolve, reject) => {
    ws.once('message', (d) => resolve(String(d)));
    ws.once('close', (code) => reject(new Error(`closed with ${code}`)));
  });
  ws.send(text);
  const reply = await got;
  ws.removeAllListeners('close');
  return reply;
}

async function close(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return;
  ws.close();
  await once(ws, 'close');
}

/** RFC 7692 §7.1 in the agreed header, as a record (flags true, values numbers). */
function agreed(header: string): Record<string, true | number> {
  assert.match(header, /^permessage-deflate/, `agreed: ${header}`);
  const out: Record<string, true | number> = {};
  for (const p of header.split(';').slice(1)) {
    const [k, v] = p.trim().split('=');
    out[k] = v === undefined ? true : Number(v);
  }
  return out;
}

for (const [setting] of Object.entries(SETTINGS)) {
  for (const [name, options] of Object.entries(WS_OPTIONS)) {
    if (options === false) continue;
    test(`ws client (${name}) ↔ echo with ${setting} settings: agreed as asked, compressed both ways, every message intact`, { timeout: 30_000 }, async () => {
      const { ws, socket, extensions } = await open(`/echo/${setting}`, options);
      const a = agreed(extensions);
      // The client's own requests are honoured (§7.1.1.1, §7.1.2.1), and the service's limits hold.
      if (options.serverNoContextTakeover === true) assert.equal(a.server_no_context_takeover, true, extensions);
      if (options.serverMaxWindowBits !== undefined) assert.ok(Number(a.server_max_window_bits) <= options.serverMaxWindowBits, extensions);
      if (setting === 'windows') {
        assert.ok(Number(a.server_max_window_bits) <= 10 && Number(a.client_max_window_bits) <= 9, extensions);
      }
      if (setting === 'defaults') assert.ok(a.server_no_context_takeover === true && a.client_no_context_takeover === true, extensions);
      const before = { up: socket.bytesWritten, down: socket.bytesRead };
      let plain = 0;
      // The same message three times (back-references into the previous one where takeover is agreed), then new ones.
      const first = message(0);
      for (const text of [first, first, first, message(1), message(2)]) {
        assert.equal(await roundTrip(ws, text), text, `${name}/${setting}: a message came back different`);
        plain += text.length;
      }
      const up = socket.bytesWritten - before.up;
      const down = socket.bytesRead - before.down;
      assert.ok(up < plain * 0.7 && down < plain * 0.7, `compressed both ways: ${up} up, ${down} down for ${plain} bytes of messages`);
      await close(ws);
    });
  }
}

/**
 * Per backend option: which directions the gateway compresses itself (the
 * others pass as they are), for a client with ws's defaults, on a service
 * with the defaults and one with context takeover on. null: the backend
 * declined (the client leg compressed by the gateway, the backend leg plain).
 */
const RELAY_EXPECTED: Record<string, Record<'defaults' | 'takeover', { toBackend: boolean; toClient: boolean }>> = {
  // Mirrors the offer: both pass.
  defaults: { defaults: { toBackend: false, toClient: false }, takeover: { toBackend: false, toClient: false } },
  // Stops its own context: still fits what the client expects.
  serverNoContextTakeover: { defaults: { toBackend: false, toClient: false }, takeover: { toBackend: false, toClient: false } },
  // Wants our frames without context: the client's (which keep it, on the takeover service) are compressed again.
  clientNoContextTakeover: { defaults: { toBackend: false, toClient: false }, takeover: { toBackend: true, toClient: false } },
  // A smaller window of its own fits the client's bigger one.
  serverMaxWindowBits: { defaults: { toBackend: false, toClient: false }, takeover: { toBackend: false, toClient: false } },
  // A smaller window for our frames than the client uses: compressed again within it.
  clientMaxWindowBits: { defaults: { toBackend: true, toClient: false }, takeover: { toBackend: true, toClient: false } },
  all: { defaults: { toBackend: true, toClient: false }, takeover: { toBackend: true, toClient: false } },
  // No compression on the backend leg: the gateway inflates toward it and compresses toward the client.
  // Accepts the gateway's second offer where the first asks server_no_context_takeover (the defaults): its frames,
  // which may refer to earlier ones, are compressed again for a client promised that they do not.
  keepsContext: { defaults: { toBackend: false, toClient: true }, takeover: { toBackend: false, toClient: false } },
  declines: { defaults: { toBackend: false, toClient: true }, takeover: { toBackend: false, toClient: true } },
};

for (const setting of ['defaults', 'takeover'] as const) {
  for (const [name, options] of Object.entries(WS_OPTIONS)) {
    test(`ws client → ${setting} websocket service → ws backend (${name}): the client leg compressed, each direction passed or compressed again as the agreements allow`, { timeout: 30_000 }, async () => {
      const { ws, socket, extensions } = await open(`/relay/${setting}/${name}`, {});
      agreed(extensions);
      const backendHeader = await roundTrip(ws, 'agreed?');
      if (options === false) assert.equal(backendHeader, '', 'the backend declined');
      else {
        const backendLeg = agreed(backendHeader);
        if (options.serverMaxWindowBits !== undefined) assert.equal(backendLeg.server_max_window_bits, options.serverMaxWindowBits);
        if (options.clientMaxWindowBits !== undefined) assert.equal(backendLeg.client_max_window_bits, options.clientMaxWindowBits);
      }
      const expected = RELAY_EXPECTED[name][setting];
      const backend = backendSocket.get(name) as WebSocket;
      const first = message(0);
      const texts = [first, first, first, message(1), message(2)];
      const plain = texts.reduce((n, t) => n + t.length, 0);

      // Client → backend: the backend answers each with its length.
      const deflatedUp = zlibStats.deflatedIn;
      const wire = { up: socket.bytesWritten, down: socket.bytesRead };
      for (const text of texts) assert.equal(await roundTrip(ws, text), `got ${text.length}`, `${setting}/${name}: up`);
      const gatewayCompressedUp = zlibStats.deflatedIn - deflatedUp > plain / 2;
      assert.equal(gatewayCompressedUp, expected.toBackend, `${setting}/${name}: the gateway ${expected.toBackend ? 'compresses again' : 'passes'} toward the backend`);
      assert.ok(socket.bytesWritten - wire.up < plain * 0.7, `the client leg carried compressed bytes up: ${socket.bytesWritten - wire.up} for ${plain}`);

      // Backend → client.
      const deflatedDown = zlibStats.deflatedIn;
      const down = socket.bytesRead;
      for (const text of texts) {
        const got = once(ws, 'message') as Promise<[Buffer]>;
        backend.send(text);
        assert.equal(String((await got)[0]), text, `${setting}/${name}: down`);
      }
      const gatewayCompressedDown = zlibStats.deflatedIn - deflatedDown > plain / 2;
      assert.equal(gatewayCompressedDown, expected.toClient, `${setting}/${name}: the gateway ${expected.toClient ? 'compresses' : 'passes'} toward the client`);
      assert.ok(socket.bytesRead - down < plain * 0.7, `the client leg carried compressed bytes down: ${socket.bytesRead - down} for ${plain}`);
      await close(ws);
    });
  }
}
