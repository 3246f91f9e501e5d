/**
 * Python's `websockets` (Debian python3-websockets; compression on by
 * default) exchanging compressed messages through the gateway: to the echo
 * service, and through a `websocket` service to a `websockets` server that
 * compresses too. Both Python ends report the extension they negotiated.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { waitForOutput } from '../services/helpers/processes.js';

const PYTHON = '/usr/bin/python3';

const CLIENT = String.raw`
import asyncio, json, os, sys
import websockets

async def main():
    results = {}
    async with websockets.connect(sys.argv[1], max_size=16 * 1024 * 1024) as ws:
        results["extensions"] = [e.name for e in ws.extensions]
        for size in [0, 100, 5000, 200000, 4 * 1024 * 1024]:
            text = ("{\"k\": \"h\u00e9llo \u2713\", \"n\": %d}" % size) * (size // 24 + 1)
            await ws.send(text[:size])
            results["text_%d" % size] = (await asyncio.wait_for(ws.recv(), 30) == text[:size])
            data = os.urandom(size // 2) * 2
            await ws.send(data)
            results["binary_%d" % size] = (await asyncio.wait_for(ws.recv(), 30) == data)
        await ws.send(["frag", "mented ", "\U0001F600" * 1000])
        results["fragmented"] = (await asyncio.wait_for(ws.recv(), 10) == "fragmented " + "\U0001F600" * 1000)
        if len(sys.argv) > 2:
            await ws.send("backend?")
            results["backend"] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    print(json.dumps(results))

asyncio.run(main())
`;

const SERVER = String.raw`
import asyncio, json
import websockets

async def echo(ws, path=None):
    async for message in ws:
        if message == "backend?":
            await ws.send(json.dumps([e.name for e in ws.extensions]))
        else:
            await ws.send(message)

async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=16 * 1024 * 1024) as server:
        print("listening %d" % server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()

asyncio.run(main())
`;

let gw: TestGateway;
let backend: ChildProcess;

before(async () => {
  backend = spawn(PYTHON, ['-c', SERVER], { stdio: ['ignore', 'pipe', 'pipe'] });
  const m = await waitForOutput(backend, /listening (\d+)/, ['stdout']);
  gw = await startGateway({
    services: {
      echo: { path: '/echo', type: 'echo', compression: true, max_message: '16MiB', allow_missing_origin: true },
      relay: { path: '/relay', type: 'websocket', backend: `ws://127.0.0.1:${m[1]}/`, compression: true, max_message: '16MiB', allow_missing_origin: true },
    },
    limits: { byte_rate: '64MiB' },
  });
});

after(async () => {
  await gw?.stop();
  if (backend && backend.exitCode === null) {
    backend.kill('SIGKILL');
    await once(backend, 'exit');
  }
});

async function runClient(url: string, askBackend: boolean): Promise<Record<string, unknown>> {
  const child = spawn(PYTHON, ['-c', CLIENT, url, ...(askBackend ? ['backend'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, err);
  return JSON.parse(out) as Record<string, unknown>;
}

function assertRoundTrips(r: Record<string, unknown>): void {
  assert.deepEqual(r.extensions, ['permessage-deflate'], 'the client negotiated permessage-deflate');
  for (const size of [0, 100, 5000, 200000, 4 * 1024 * 1024]) {
    assert.equal(r[`text_${size}`], true, `text ${size}`);
    assert.equal(r[`binary_${size}`], true, `binary ${size}`);
  }
  assert.equal(r.fragmented, true);
}

test('python websockets ↔ echo: compressed text, binary and fragmented messages round-trip', { timeout: 120_000 }, async () => {
  assertRoundTrips(await runClient(gw.url('/echo'), false));
});

test('python websockets ↔ websocket service ↔ python websockets server, compressed on both legs', { timeout: 120_000 }, async () => {
  const r = await runClient(gw.url('/relay'), true);
  assertRoundTrips(r);
  assert.deepEqual(r.backend, ['permessage-deflate'], 'the backend leg negotiated permessage-deflate too');
});
