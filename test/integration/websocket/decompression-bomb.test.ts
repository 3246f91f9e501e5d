/**
 * A decompression bomb against the gateway as a real process: a 1 MiB
 * compressed message that inflates to 1 GiB is refused with 1009, and the
 * process's peak resident memory (VmHWM, reset just before) grows by a few
 * MiB at most — the message limit plus one zlib chunk, not the gigabyte.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import zlib from 'node:zlib';
import { RawClient } from '../../helpers/raw-client.js';
import { startGatewayProcess, type GatewayProcess } from '../services/helpers/gateway-process.js';

const MiB = 1024 * 1024;
let gw: GatewayProcess;

before(async () => {
  gw = await startGatewayProcess([
    'listen:',
    '  - host: 127.0.0.1',
    '    port: 0',
    'log:',
    '  level: info',
    'services:',
    '  echo:',
    '    path: /echo',
    '    type: echo',
    '    allow_missing_origin: true',
    '    max_message: 2MiB',
    '    compression: true',
    '',
  ].join('\n'));
});

after(async () => {
  await gw?.stop();
});

function status(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `no ${field} for ${pid}`);
  return Number(m[1]) * 1024;
}

/**
 * 1 GiB of zeros as one raw deflate stream of about 1 MiB: 1024 copies of
 * 1 MiB of zeros compressed with a sync flush (independent sync-flushed
 * streams concatenate into one valid stream), the last tail removed (§7.2.1).
 */
function bomb(): Buffer {
  const oneMiB = zlib.deflateRawSync(Buffer.alloc(MiB), { level: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  const all = Buffer.concat(Array.from({ length: 1024 }, () => oneMiB));
  return all.subarray(0, all.length - 4);
}

async function openCompressed(): Promise<RawClient> {
  const client = await RawClient.connect({ port: gw.port });
  const res = await client.upgrade('/echo', { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' });
  assert.equal(res.status, 101);
  assert.match(res.headers['sec-websocket-extensions'] ?? '', /^permessage-deflate/);
  return client;
}

test('a 1 MiB message that inflates to 1 GiB is refused with 1009, with bounded memory', { timeout: 120_000 }, async () => {
  const payload = bomb();
  assert.ok(payload.length > MiB && payload.length < 1.02 * MiB, `the bomb is about 1 MiB compressed (${payload.length} bytes)`);

  // Warm up: one compressed message each way, so zlib and the code paths are in place before measuring.
  const warm = await openCompressed();
  await warm.sendFrame({ opcode: 2, rsv: 4, payload: zlib.deflateRawSync(Buffer.alloc(4096, 1)) });
  await warm.readFrame(5000);

  const rssBefore = status(gw.pid, 'VmRSS');
  // Linux: writing 5 to clear_refs resets the peak (VmHWM) to the current RSS.
  writeFileSync(`/proc/${gw.pid}/clear_refs`, '5');

  const client = await openCompressed();
  await client.write(client.frame({ opcode: 2, rsv: 4, payload })).catch(() => { /* the gateway may close mid-write */ });
  const close = await client.readClose(60_000);
  assert.equal(close.code, 1009);
  await client.expectClosed(10_000);

  const peak = status(gw.pid, 'VmHWM');
  const growth = peak - rssBefore;
  // The message (1 MiB on the wire, held as socket reads), at most max_message (2 MiB) inflated
  // plus one 16 KiB chunk, and a zlib context: a few MiB. Unbounded, this would be 1 GiB.
  process.stdout.write(`# decompression bomb: RSS ${(rssBefore / MiB).toFixed(1)} MiB before, peak ${(peak / MiB).toFixed(1)} MiB during (+${(growth / MiB).toFixed(1)} MiB)\n`);
  assert.ok(growth < 32 * MiB, `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB while refusing the bomb`);

  for (let i = 0; i < 100 && !/"reason":"message_too_big"/.test(gw.output()); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(gw.output(), /"reason":"message_too_big"/, 'the refusal is audited');

  // The warm connection, open all along, still echoes.
  await warm.sendFrame({ opcode: 1, payload: 'still here' });
  assert.equal((await warm.readFrame(5000)).payload.toString(), 'still here');
  warm.destroy();
});

test('the same bomb split over 64 fragments is refused the same way', { timeout: 120_000 }, async () => {
  const payload = bomb();
  const size = Math.ceil(payload.length / 64);
  const rssBefore = status(gw.pid, 'VmRSS');
  writeFileSync(`/proc/${gw.pid}/clear_refs`, '5');
  const client = await openCompressed();
  const frames: Buffer[] = [];
  for (let at = 0; at < payload.length; at += size) {
    const first = at === 0;
    frames.push(client.frame({ opcode: first ? 2 : 0, rsv: first ? 4 : 0, fin: at + size >= payload.length, payload: payload.subarray(at, at + size) }));
  }
  await client.write(Buffer.concat(frames)).catch(() => { /* the gateway may close mid-write */ });
  assert.equal((await client.readClose(60_000)).code, 1009);
  await client.expectClosed(10_000);
  const growth = status(gw.pid, 'VmHWM') - rssBefore;
  process.stdout.write(`# fragmented bomb: peak +${(growth / MiB).toFixed(1)} MiB\n`);
  assert.ok(growth < 32 * MiB, `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB while refusing the bomb`);
});
