/**
 * permessage-deflate through the relay, with real sockets on both sides: a
 * `websocket` service whose backend is a small raw WebSocket server of the
 * test's own, which answers the gateway's offer as each test says and
 * records the exact frames it receives. So a test can see whether compressed
 * frames crossed untouched (the very bytes the client sent, RSV1 kept) or were
 * inflated and compressed again, per direction — and that nothing invalid or
 * over the limit reaches the backend; and that an inspector (the tcp text
 * policy, STOMP) reads plain payload even where frames could have passed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import zlib from 'node:zlib';
import mqttPacket from 'mqtt-packet';
import WebSocket, { WebSocketServer } from 'ws';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { RawClient, buildFrame, closePayload, parseServerFrame, type ServerFrame } from '../../helpers/raw-client.js';
import net from 'node:net';
import { assertNoLeaks, snapshotResources } from '../../helpers/leaks.js';

const SYNC = { finishFlush: zlib.constants.Z_SYNC_FLUSH };
/** RFC 7692 §7.2.3.3: "Hello" in a stored block — a form the gateway's zlib never produces itself. */
const HELLO_STORED = Buffer.from('0005 00faff 48656c6c6f 00'.replace(/ /g, ''), 'hex');

function deflateMessage(data: Buffer | string): Buffer {
  const out = zlib.deflateRawSync(typeof data === 'string' ? Buffer.from(data) : data, SYNC);
  return out.subarray(0, out.length - 4);
}
function inflateMessage(payload: Buffer): Buffer {
  return zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), SYNC);
}

/** One backend connection: the frames it received (unmasked), and a way to send frames to the gateway. */
interface BackendConn {
  offer: string | undefined;
  frames: ServerFrame[];
  /** Close codes the gateway sent it. */
  closes: number[];
  socket: Duplex;
  send(opcode: number, payload: Buffer, rsv?: number): void;
  nextFrame(): Promise<ServerFrame>;
}

/**
 * A raw WebSocket server. `answer(offer)` chooses its Sec-WebSocket-Extensions
 * (undefined: declines). It records frames and echoes nothing on its own.
 */
class RecordingBackend {
  readonly server = http.createServer();
  readonly conns: BackendConn[] = [];
  answer: (offer: string | undefined) => string | undefined = () => undefined;
  private waiters: Array<(c: BackendConn) => void> = [];

  async listen(): Promise<number> {
    this.server.on('upgrade', (req, socket) => this.upgrade(req, socket));
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return (this.server.address() as { port: number }).port;
  }

  private upgrade(req: http.IncomingMessage, socket: Duplex): void {
    const offer = req.headers['sec-websocket-extensions'] as string | undefined;
    const ext = this.answer(offer);
    // The first subprotocol offered, if any (the STOMP service requires one).
    const protocol = (req.headers['sec-websocket-protocol'] as string | undefined)?.split(',')[0].trim();
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept}`,
      ...(ext !== undefined ? [`Sec-WebSocket-Extensions: ${ext}`] : []),
      ...(protocol !== undefined ? [`Sec-WebSocket-Protocol: ${protocol}`] : []), '', ''].join('\r\n'));
    let buf = Buffer.alloc(0);
    const frames: ServerFrame[] = [];
    const closes: number[] = [];
    let wake: (() => void) | null = null;
    const conn: BackendConn = {
      offer, frames, closes, socket,
      send: (opcode, payload, rsv = 0) => { socket.write(buildFrame({ opcode, payload, rsv, mask: false })); },
      nextFrame: async () => {
        while (frames.length === 0) await new Promise<void>((r) => { wake = r; });
        return frames.shift() as ServerFrame;
      },
    };
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (let r = parseServerFrame(buf); r !== undefined; r = parseServerFrame(buf)) {
        buf = buf.subarray(r.size);
        if (r.frame.opcode === 8) closes.push(r.frame.payload.length >= 2 ? r.frame.payload.readUInt16BE(0) : 1005);
        if (r.frame.opcode === 8) socket.end(buildFrame({ opcode: 8, payload: r.frame.payload.subarray(0, 2), mask: false }));
        else frames.push(r.frame);
        wake?.();
      }
    });
    socket.on('error', () => { /* the gateway may reset */ });
    this.conns.push(conn);
    for (const w of this.waiters.splice(0)) w(conn);
  }

  async nextConnection(): Promise<BackendConn> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  close(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let backend: RecordingBackend;
let gw: TestGateway;

before(async () => {
  backend = new RecordingBackend();
  const port = await backend.listen();
  gw = await startGateway({
    services: {
      relay: { path: '/relay', type: 'websocket', backend: `ws://127.0.0.1:${port}/`, compression: true, allow_missing_origin: true, max_message: '64KiB' },
      // The STOMP inspector on a compressed service whose backend agrees the very same parameters (so,
      // uninspected, frames would pass as they are): the inspector must see plain payload all the same.
      stomp: {
        path: '/stomp', type: 'websocket', backend: `ws://127.0.0.1:${port}/`, compression: true, allow_missing_origin: true,
        subprotocols: ['v12.stomp'], require_subprotocol: true,
        inspect: { stomp: { subscribe: ['/topic/**'], send: ['/queue/ok'], connect: { login: 'gateway-login', passcode: 'gateway-passcode' } } },
      },
      mqtt: {
        path: '/mqtt', type: 'websocket', backend: `ws://127.0.0.1:${port}/`, compression: true, allow_missing_origin: true,
        subprotocols: ['mqtt'], require_subprotocol: true,
        inspect: { mqtt: { publish: ['ok/#'], subscribe: ['news/#'], connect: { client_id: 'gateway-client', username: 'gateway-user', password: 'gateway-password' } } },
      },
    },
  });
});

after(async () => {
  await gw.stop();
  await backend.close();
});

/** The relay service's messages toward clients, from the gateway's metrics. */
async function messagesOut(): Promise<number> {
  const text = await gw.gateway.metrics.render();
  const m = /^gatehouse_messages_total\{service="relay",direction="out"\} (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** The mirror answer: what a backend that accepts the gateway's offer as it is says. */
const MIRROR = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';

async function connect(answer: (offer: string | undefined) => string | undefined): Promise<{ client: RawClient; b: BackendConn; extensions?: string }> {
  backend.answer = answer;
  const next = backend.nextConnection();
  const client = await RawClient.connect({ port: gw.port });
  const res = await client.upgrade('/relay', { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' });
  assert.equal(res.status, 101, res.rawHead);
  return { client, b: await next, extensions: res.headers['sec-websocket-extensions'] };
}

test('the gateway offers the backend what the client agreed', { timeout: 30_000 }, async () => {
  const { client, b, extensions } = await connect(() => MIRROR);
  assert.equal(extensions, MIRROR);
  assert.equal(b.offer, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits, '
    + 'permessage-deflate; client_no_context_takeover; client_max_window_bits');
  client.destroy();
});

test('a backend answer the RFC forbids fails the client\'s handshake with 502 backend_bad_extension', { timeout: 30_000 }, async () => {
  for (const answer of ['permessage-deflate; server_no_context_takeover; mystery', 'x-other', 'permessage-deflate; server_no_context_takeover; server_max_window_bits=99']) {
    backend.answer = () => answer;
    const client = await RawClient.connect({ port: gw.port });
    const res = await client.upgrade('/relay', { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
    assert.equal(res.status, 502, answer);
    await client.expectClosed();
    assert.ok(gw.auditReasons().includes('gh_backend_bad_extension'), `audit reasons: ${gw.auditReasons().join(',')}`);
  }
});

test('compatible agreements: compressed frames cross untouched, both ways, RSV1 kept', { timeout: 30_000 }, async () => {
  const before = snapshotResources();
  const { client, b } = await connect(() => MIRROR);
  // Client → backend: the very stored-block payload the client sent.
  await client.sendFrame({ opcode: 1, rsv: 4, payload: HELLO_STORED });
  const up = await b.nextFrame();
  assert.equal(up.rsv, 4, 'RSV1 kept');
  assert.ok(up.payload.equals(HELLO_STORED), `the backend got ${up.payload.toString('hex')}, not the client's bytes`);
  // Backend → client, likewise, even below the gateway's own threshold.
  const outBefore = await messagesOut();
  b.send(2, HELLO_STORED, 4);
  const down = await client.readFrame();
  assert.equal(down.rsv, 4);
  assert.ok(down.payload.equals(HELLO_STORED));
  assert.equal(await messagesOut(), outBefore + 1, 'a passing message is counted toward the client like any other (the channel guard sees it)');
  // Plain messages stay plain both ways (a passing relay never compresses on its own).
  const big = 'p'.repeat(5000);
  await client.sendFrame({ opcode: 1, payload: big });
  const plainUp = await b.nextFrame();
  assert.equal(plainUp.rsv, 0);
  assert.equal(plainUp.payload.toString(), big);
  client.destroy();
  await assertNoLeaks(before);
});

test('a backend that declines: the client\'s messages reach it inflated, its messages reach the client compressed', { timeout: 30_000 }, async () => {
  const { client, b } = await connect(() => undefined);
  const text = 'hello backend '.repeat(200);
  await client.sendFrame({ opcode: 1, rsv: 4, payload: deflateMessage(text) });
  const up = await b.nextFrame();
  assert.equal(up.rsv, 0, 'uncompressed toward a backend without the extension');
  assert.equal(up.payload.toString(), text);
  b.send(1, Buffer.from(text));
  const down = await client.readFrame();
  assert.equal(down.rsv, 4, 'compressed by the gateway toward the client (above the threshold)');
  assert.equal(inflateMessage(down.payload).toString(), text);
  client.destroy();
});

test('incompatible parameters: the direction that does not fit is inflated and compressed again', { timeout: 30_000 }, async () => {
  // The backend limits the window the gateway (and so the client's frames) may use to 9 bits: the client uses 15.
  const { client, b } = await connect(() => 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=9');
  const text = JSON.stringify(Array.from({ length: 300 }, (_, i) => ({ i, name: `item ${i}`, tags: ['a', 'b'] })));
  await client.sendFrame({ opcode: 1, rsv: 4, payload: HELLO_STORED });
  const up = await b.nextFrame();
  assert.equal(up.rsv, 0, 'a 5-byte message, recompressed by policy: below the threshold, plain');
  assert.equal(up.payload.toString(), 'Hello');
  await client.sendFrame({ opcode: 1, rsv: 4, payload: deflateMessage(text) });
  const up2 = await b.nextFrame();
  assert.equal(up2.rsv, 4);
  assert.equal(zlib.inflateRawSync(Buffer.concat([up2.payload, Buffer.from([0, 0, 0xff, 0xff])]), { ...SYNC, windowBits: 9 }).toString(), text,
    'compressed again for the backend, within its 9-bit window');
  // The other direction still fits and passes untouched.
  b.send(2, HELLO_STORED, 4);
  assert.ok((await client.readFrame()).payload.equals(HELLO_STORED));
  client.destroy();
});

test('passing frames, invalid UTF-8 and messages over max_message never reach the backend', { timeout: 30_000 }, async () => {
  for (const [payload, code] of [
    [deflateMessage(Buffer.from([0x61, 0xed, 0xa0, 0x80])), 1007],
    [deflateMessage(Buffer.alloc(100 * 1024, 0x61)), 1009],
  ] as Array<[Buffer, number]>) {
    const { client, b } = await connect(() => MIRROR);
    const auditsBefore = gw.auditReasons().length;
    await client.sendFrame({ opcode: 1, rsv: 4, payload });
    assert.equal((await client.readClose(5000)).code, code);
    await client.expectClosed(5000);
    assert.equal(b.frames.length, 0, `nothing reached the backend (close ${code})`);
    assert.ok(gw.auditReasons().length > auditsBefore, 'audited');
  }
});

test('a backend\'s compressed message that inflates past max_message: the backend gets 1009, the client 1014 and none of it', { timeout: 30_000 }, async () => {
  // Both ways: a backend whose frames would pass as they are (MIRROR), and one whose agreement does not fit the client's.
  for (const answer of [MIRROR, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=9']) {
    const { client, b } = await connect(() => answer);
    const failuresBefore = gw.gateway.metrics.get('gatehouse_backend_failures_total', { service: 'relay' });
    const logsBefore = gw.logs.length;
    // 100 KiB of zeros in about 100 bytes, against the service's 64 KiB max_message.
    b.send(2, deflateMessage(Buffer.alloc(100 * 1024)), 4);
    const close = await client.readClose(5000); // fails if a data frame comes first
    assert.equal(close.code, 1014, `${answer}: the client is told the backend failed`);
    await client.sendFrame({ opcode: 8, payload: closePayload(1014) });
    await client.expectClosed(5000);
    // The backend's socket closes after the gateway's Close has arrived (or at once if none comes: then the assert names it).
    if (!b.socket.destroyed) await once(b.socket, 'close');
    assert.deepEqual(b.closes, [1009], `${answer}: the backend is closed with 1009`);
    assert.ok(gw.gateway.metrics.get('gatehouse_backend_failures_total', { service: 'relay' }) > failuresBefore, 'counted as a backend failure');
    assert.ok(gw.logs.slice(logsBefore).some((l) => l.audit && l.reason === 'backend_message_too_big' && l.code === 1009),
      `${answer}: audited as backend_message_too_big with code 1009`);
  }
});

test('ws (perMessageDeflate) through the relay to a compressing ws backend: many sizes round-trip, compressed on both legs', { timeout: 60_000 }, async () => {
  // A real ws server with perMessageDeflate as the backend: echo. Its socket's byte counts show what its leg carried.
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: { threshold: 0 }, maxPayload: 16 * 1024 * 1024 });
  await once(wss, 'listening');
  const backendLegs: Array<{ extensions: string; socket: net.Socket }> = [];
  wss.on('connection', (s, req) => {
    backendLegs.push({ extensions: s.extensions, socket: req.socket as net.Socket });
    s.on('message', (d, isBinary) => s.send(d, { binary: isBinary }));
  });
  const port = (wss.address() as { port: number }).port;
  const g = await startGateway({
    services: { echo: { path: '/e', type: 'websocket', backend: `ws://127.0.0.1:${port}/`, compression: true, allow_missing_origin: true, max_message: '16MiB' } },
    limits: { byte_rate: '64MiB' },
  });
  try {
    const ws = new WebSocket(g.url('/e'), { perMessageDeflate: { threshold: 0 }, maxPayload: 16 * 1024 * 1024 });
    const upgraded = once(ws, 'upgrade') as Promise<[http.IncomingMessage]>;
    await once(ws, 'open');
    const [res] = await upgraded;
    const clientLeg = res.socket as net.Socket;
    assert.match(ws.extensions, /permessage-deflate/, 'the client leg agreed compression');
    assert.match(backendLegs[0]?.extensions ?? '', /permessage-deflate/, 'the backend leg agreed compression');
    const backendLeg = backendLegs[0].socket;
    let sent = 0;
    const wire = { clientUp: clientLeg.bytesWritten, clientDown: clientLeg.bytesRead, backendIn: backendLeg.bytesRead, backendOut: backendLeg.bytesWritten };
    for (const size of [0, 10, 2000, 70_000, 3 * 1024 * 1024]) {
      for (const binary of [false, true]) {
        const data = Buffer.from('{"a":1,"b":"two"}'.repeat(Math.ceil(size / 17)).slice(0, size));
        const got = new Promise<[Buffer, boolean]>((resolve) => ws.once('message', (d, isBinary) => resolve([d as Buffer, isBinary])));
        ws.send(data, { binary });
        const [echo, isBinary] = await got;
        assert.ok(echo.equals(data), `${binary ? 'binary' : 'text'} ${size}`);
        assert.equal(isBinary, binary);
        sent += size;
      }
    }
    // ~6.1 MB of JSON-like text each way, about 1:200 under deflate: on each leg and each way far fewer bytes than that.
    const carried = {
      clientUp: clientLeg.bytesWritten - wire.clientUp, clientDown: clientLeg.bytesRead - wire.clientDown,
      backendIn: backendLeg.bytesRead - wire.backendIn, backendOut: backendLeg.bytesWritten - wire.backendOut,
    };
    for (const [leg, bytes] of Object.entries(carried)) assert.ok(bytes < sent / 10, `${leg}: ${bytes} bytes on the wire for ${sent} bytes of messages`);
    ws.close();
    await once(ws, 'close');
  } finally {
    await g.stop();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  }
});

test('an inspector sees plain payload: a tcp service refuses compressed text, and gets binary inflated', { timeout: 30_000 }, async () => {
  const seen: Buffer[] = [];
  const tcpBackend = net.createServer((s) => s.on('data', (d) => seen.push(d)));
  tcpBackend.listen(0, '127.0.0.1');
  await once(tcpBackend, 'listening');
  const g = await startGateway({
    services: { tcp: { path: '/tcp', type: 'tcp', backend: `tcp://127.0.0.1:${(tcpBackend.address() as { port: number }).port}`, compression: true, allow_missing_origin: true } },
  });
  try {
    const client = await RawClient.connect({ port: g.port });
    assert.equal((await client.upgrade('/tcp', { 'Sec-WebSocket-Extensions': 'permessage-deflate' })).status, 101);
    const bytes = Buffer.from('binary for the tcp backend '.repeat(100));
    await client.sendFrame({ opcode: 2, rsv: 4, payload: deflateMessage(bytes) });
    for (let i = 0; i < 200 && Buffer.concat(seen).length < bytes.length; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(Buffer.concat(seen).equals(bytes), 'the tcp backend gets the inflated bytes');
    await client.sendFrame({ opcode: 1, rsv: 4, payload: deflateMessage('text is refused here') });
    assert.equal((await client.readClose()).code, 1003, 'the text policy saw a text message, compressed or not');
    await client.sendFrame({ opcode: 8, payload: Buffer.from([0x03, 0xeb]) });
    await client.expectClosed();
  } finally {
    await g.stop();
    await new Promise<void>((resolve) => tcpBackend.close(() => resolve()));
  }
});

/** One whole message from frames read one by one (until FIN), inflated when its first frame had RSV1. */
async function wholeMessage(nextFrame: () => Promise<ServerFrame>): Promise<{ bytes: Buffer; compressed: boolean }> {
  const first = await nextFrame();
  const parts = [first.payload];
  for (let f = first; !f.fin;) parts.push((f = await nextFrame()).payload);
  const compressed = first.rsv === 4;
  return { bytes: compressed ? inflateMessage(Buffer.concat(parts)) : Buffer.concat(parts), compressed };
}
const backendMessageBytes = (b: BackendConn) => wholeMessage(() => b.nextFrame());
const clientMessageBytes = async (client: RawClient): Promise<Buffer> => (await wholeMessage(() => client.readFrame(10_000))).bytes;
async function backendMessage(b: BackendConn): Promise<{ text: string; compressed: boolean }> {
  const m = await backendMessageBytes(b);
  return { text: m.bytes.toString(), compressed: m.compressed };
}
async function clientMessage(client: RawClient): Promise<{ text: string; compressed: boolean }> {
  const m = await wholeMessage(() => client.readFrame(10_000));
  return { text: m.bytes.toString(), compressed: m.compressed };
}

test('an inspected service (STOMP) with compression: the inspector reads and rewrites plain payload both ways; each hop compresses on its own', { timeout: 30_000 }, async () => {
  backend.answer = () => MIRROR;
  const next = backend.nextConnection();
  const client = await RawClient.connect({ port: gw.port });
  const res = await client.upgrade('/stomp', { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits', 'Sec-WebSocket-Protocol': 'v12.stomp' });
  assert.equal(res.status, 101, res.rawHead);
  assert.equal(res.headers['sec-websocket-extensions'], MIRROR);
  const b = await next;
  assert.match(b.offer ?? '', /^permessage-deflate/, 'the backend is offered compression as for an uninspected service');

  // CONNECT, compressed and cut into two frames mid-stream: the inspector reads it whole and puts the gateway's login in.
  const connect = deflateMessage('CONNECT\naccept-version:1.2\nhost:/\nlogin:mallory\npasscode:guessed\n\n\0');
  const half = connect.length >> 1;
  await client.sendFrame({ opcode: 1, rsv: 4, fin: false, payload: connect.subarray(0, half) });
  await client.sendFrame({ opcode: 0, payload: connect.subarray(half) });
  const connectUp = await backendMessage(b);
  assert.match(connectUp.text, /^CONNECT\n/, `the backend got ${JSON.stringify(connectUp.text.slice(0, 80))}`);
  assert.match(connectUp.text, /\nlogin:gateway-login\n/, 'the inspector injected the login: it read the inflated CONNECT');
  assert.doesNotMatch(connectUp.text, /mallory|guessed/, 'never the client\'s own credentials');

  // The broker's CONNECTED, compressed in a form the gateway's zlib never writes: the inspector checks it inflated.
  b.send(1, deflateMessage('CONNECTED\nversion:1.2\n\n\0'), 4);
  assert.match((await clientMessage(client)).text, /^CONNECTED\nversion:1.2\n/);

  // A large allowed SEND: the inspector passes it, the backend hop compresses it by its own agreement.
  const body = JSON.stringify(Array.from({ length: 100 }, (_, i) => ({ i, text: `message ${i}` })));
  const send = `SEND\ndestination:/queue/ok\ncontent-type:application/json\n\n${body}\0`;
  await client.sendFrame({ opcode: 1, rsv: 4, payload: deflateMessage(send) });
  const sendUp = await backendMessage(b);
  assert.equal(sendUp.text, send);
  assert.equal(sendUp.compressed, true, 'above the threshold: compressed again toward the backend');

  // A large MESSAGE from the broker, compressed: checked plain, compressed again toward the client.
  await client.sendFrame({ opcode: 1, rsv: 4, payload: deflateMessage('SUBSCRIBE\nid:0\ndestination:/topic/news\n\n\0') });
  assert.match((await backendMessage(b)).text, /^SUBSCRIBE\n/);
  const message = `MESSAGE\nsubscription:0\nmessage-id:1\ndestination:/topic/news\n\n${body}\0`;
  b.send(1, deflateMessage(message), 4);
  const down = await clientMessage(client);
  assert.equal(down.text, message);
  assert.equal(down.compressed, true);

  // A forbidden SEND, compressed: ERROR and 1008 for the client; the backend never sees it.
  const auditsBefore = gw.auditReasons().length;
  await client.sendFrame({ opcode: 1, rsv: 4, payload: deflateMessage('SEND\ndestination:/queue/secret\n\nleak\0') });
  assert.match((await clientMessage(client)).text, /^ERROR\n/);
  assert.equal((await client.readClose(10_000)).code, 1008);
  await client.sendFrame({ opcode: 8, payload: closePayload(1008) });
  await client.expectClosed(10_000);
  // The backend's socket closes after the gateway's Close: everything the gateway sent it has arrived by then.
  if (!b.socket.destroyed) await once(b.socket, 'close');
  assert.deepEqual(b.frames.map((f) => f.opcode), [], 'nothing after the SUBSCRIBE reached the backend');
  assert.ok(gw.auditReasons().slice(auditsBefore).includes('stomp_send_denied'), `audit reasons: ${gw.auditReasons().slice(auditsBefore).join(',')}`);
});

/** The MQTT 3.1.1 packets in one message's bytes. */
function mqttPackets(bytes: Buffer): mqttPacket.Packet[] {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const out: mqttPacket.Packet[] = [];
  parser.on('packet', (p) => out.push(p));
  parser.on('error', (e) => { throw e; });
  parser.parse(bytes);
  return out;
}

test('an inspected service (MQTT) with compression: the inspector reads and rewrites plain payload both ways; each hop compresses on its own', { timeout: 30_000 }, async () => {
  backend.answer = () => MIRROR;
  const next = backend.nextConnection();
  const client = await RawClient.connect({ port: gw.port });
  const res = await client.upgrade('/mqtt', { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits', 'Sec-WebSocket-Protocol': 'mqtt' });
  assert.equal(res.status, 101, res.rawHead);
  assert.equal(res.headers['sec-websocket-extensions'], MIRROR);
  const b = await next;
  const gen = (p: Record<string, unknown>): Buffer => mqttPacket.generate(p as unknown as mqttPacket.Packet, { protocolVersion: 4 });
  const backendPackets = async (): Promise<{ packets: mqttPacket.Packet[]; compressed: boolean }> => {
    const m = await backendMessageBytes(b);
    return { packets: mqttPackets(m.bytes), compressed: m.compressed };
  };

  // CONNECT, compressed and cut into two frames: the inspector reads it whole and puts the gateway's identity in.
  const connect = deflateMessage(gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'mallory-id', username: 'mallory', password: Buffer.from('guessed'), clean: true, keepalive: 0 }));
  const half = connect.length >> 1;
  await client.sendFrame({ opcode: 2, rsv: 4, fin: false, payload: connect.subarray(0, half) });
  await client.sendFrame({ opcode: 0, payload: connect.subarray(half) });
  const [up] = (await backendPackets()).packets as mqttPacket.IConnectPacket[];
  assert.equal(up?.cmd, 'connect');
  assert.equal(up.clientId, 'gateway-client', 'the inspector set the client id: it read the inflated CONNECT');
  assert.equal(up.username, 'gateway-user');
  assert.equal(String(up.password), 'gateway-password');

  // The broker's CONNACK, compressed in a form the gateway's zlib never writes.
  b.send(2, deflateMessage(gen({ cmd: 'connack', returnCode: 0, sessionPresent: false })), 4);
  assert.equal(mqttPackets(await clientMessageBytes(client))[0]?.cmd, 'connack');

  // A large allowed PUBLISH: passed by the inspector, compressed again toward the backend.
  const body = Buffer.from(JSON.stringify(Array.from({ length: 100 }, (_, i) => ({ i, text: `reading ${i}` }))));
  await client.sendFrame({ opcode: 2, rsv: 4, payload: deflateMessage(gen({ cmd: 'publish', topic: 'ok/sensor', payload: body, qos: 0, retain: false, dup: false })) });
  const published = await backendPackets();
  const pub = published.packets[0] as mqttPacket.IPublishPacket;
  assert.equal(pub?.topic, 'ok/sensor');
  assert.ok(Buffer.from(pub.payload).equals(body));
  assert.equal(published.compressed, true, 'above the threshold: compressed again toward the backend');

  // SUBSCRIBE, SUBACK, then a large PUBLISH from the broker, compressed: checked plain, compressed again toward the client.
  await client.sendFrame({ opcode: 2, rsv: 4, payload: deflateMessage(gen({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'news/#', qos: 0 }] })) });
  assert.equal((await backendPackets()).packets[0]?.cmd, 'subscribe');
  b.send(2, deflateMessage(gen({ cmd: 'suback', messageId: 1, granted: [0] })), 4);
  assert.equal(mqttPackets(await clientMessageBytes(client))[0]?.cmd, 'suback');
  b.send(2, deflateMessage(gen({ cmd: 'publish', topic: 'news/today', payload: body, qos: 0, retain: false, dup: false })), 4);
  const downMessage = await wholeMessage(() => client.readFrame(10_000));
  assert.equal(downMessage.compressed, true, 'compressed toward the client');
  const down = mqttPackets(downMessage.bytes)[0] as mqttPacket.IPublishPacket;
  assert.equal(down?.topic, 'news/today');
  assert.ok(Buffer.from(down.payload).equals(body));

  // A forbidden PUBLISH, compressed (3.1.1 has no refusal code): close 1008; the backend never sees it.
  const auditsBefore = gw.auditReasons().length;
  await client.sendFrame({ opcode: 2, rsv: 4, payload: deflateMessage(gen({ cmd: 'publish', topic: 'secret/x', payload: Buffer.from('leak'), qos: 0, retain: false, dup: false })) });
  assert.equal((await client.readClose(10_000)).code, 1008);
  await client.sendFrame({ opcode: 8, payload: closePayload(1008) });
  await client.expectClosed(10_000);
  if (!b.socket.destroyed) await once(b.socket, 'close');
  assert.deepEqual(b.frames.map((f) => f.opcode), [], 'nothing after the SUBSCRIBE reached the backend');
  assert.ok(gw.auditReasons().slice(auditsBefore).includes('mqtt_publish_refused'), `audit reasons: ${gw.auditReasons().slice(auditsBefore).join(',')}`);
});
