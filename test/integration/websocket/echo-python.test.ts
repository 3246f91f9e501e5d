/**
 * The echo service driven by a second independent implementation: Python's
 * `websockets` (Debian python3-websockets), run as a child process.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';

const PYTHON = '/usr/bin/python3';

const SCRIPT = String.raw`
import asyncio, json, os, sys
import websockets

async def main():
    url = sys.argv[1]
    results = {}
    async with websockets.connect(url, max_size=32 * 1024 * 1024, compression=None) as ws:
        for size in [0, 125, 126, 65535, 65536, 16 * 1024 * 1024]:
            payload = os.urandom(size)
            await ws.send(payload)
            got = await asyncio.wait_for(ws.recv(), 30)
            results["binary_%d" % size] = (got == payload)
        text = "h\u00e9llo w\u00f6rld \u2713 \U0001F600" * 100
        await ws.send(text)
        results["text"] = (await asyncio.wait_for(ws.recv(), 10) == text)
        # an iterable of str is sent as one fragmented message
        await ws.send(["frag", "mented ", "\U0001F600"])
        results["fragmented"] = (await asyncio.wait_for(ws.recv(), 10) == "fragmented \U0001F600")
        waiter = await ws.ping(b"py")
        await asyncio.wait_for(waiter, 5)
        results["pong"] = True
        await ws.close(code=4001, reason="done")
        results["close_code"] = ws.close_code
    print(json.dumps(results))

asyncio.run(main())
`;

let gw: TestGateway;
before(async () => {
  gw = await startGateway({ services: { echo: { path: '/echo', type: 'echo', max_message: '16MiB', allow_missing_origin: true } } });
});
after(() => gw.stop());

test('python websockets: sizes, text, fragmentation, ping and close code round trip', async () => {
  const child = spawn(PYTHON, ['-c', SCRIPT, gw.url('/echo')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, err);
  const r = JSON.parse(out) as Record<string, unknown>;
  for (const size of [0, 125, 126, 65535, 65536, 16 * 1024 * 1024]) assert.equal(r[`binary_${size}`], true, `binary ${size}`);
  assert.equal(r.text, true);
  assert.equal(r.fragmented, true);
  assert.equal(r.pong, true);
  assert.equal(r.close_code, 4001);
});
