/**
 * The Autobahn|Testsuite fuzzing-client cases (categories 1–7, 9, 10, and the
 * permessage-deflate categories 12 and 13) against the gateway's echo
 * service, one subtest per case.
 *
 * Two services:
 * - "Autobahn profile" (/autobahn): max_message 16 MiB and max_fragments
 *   65,537 (9.3.1/9.4.1 send 4 MiB in 65,536 64-byte fragments, then an empty final one), compression on
 *   with its defaults. Every case must be OK, NON-STRICT or INFORMATIONAL;
 *   cases 1–10 offer no extension, 12–13 offer permessage-deflate.
 * - production defaults (/echo: max_message 1 MiB, max_fragments 1,024):
 *   category 9 again; messages over 1 MiB must end in close 1009 from the
 *   gateway, the rest must pass.
 *
 * Around every case: a canary connection (the `ws` client) keeps echoing, and
 * every case in which the gateway must fail the connection leaves an audit
 * line with its reason and close code.
 *
 * CONFORMANCE_REPORT=path writes the Markdown report (docs/conformance.md).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import WebSocket from 'ws';
import { startGateway, type TestGateway, type LogLine } from '../helpers/gateway.js';
import { CASES, NORMAL, type ConformanceCase } from './cases.js';
import { isPassing, runCase, type CaseResult, type Target } from './runner.js';
import { FrameReader, encodeFrame, openRaw } from './wire.js';
import { assertNoLeaks, snapshotResources, type ResourceCounts } from '../helpers/leaks.js';
import { renderReport } from './report.js';
import { echoServiceSchema } from '../../src/config/service.js';
import { deflateMessageCount } from './cases-compression.js';
import { describeTestData, testDataSource } from './testdata.js';

const MiB = 1024 * 1024;
const PRODUCTION_MAX_MESSAGE = MiB;
/**
 * Failure-path timers: category 9's are capped so a broken engine cannot stall
 * the run; the 0.5 s of 6.5–6.23 is raised to 1 s against CI load.
 */
const RUN_OPTIONS = { maxAfterMs: 10_000, minAfterMs: 1000 };

let gw: TestGateway;
let canary: WebSocket;
let canarySeq = 0;
/** Sockets and timers with only the gateway and the canary open. */
let baseline: ResourceCounts;
const autobahnResults: CaseResult[] = [];
const productionResults: CaseResult[] = [];
const takeoverResults: CaseResult[] = [];
const productionExpected = new Map<string, string>();

/**
 * The fuzzing client, like wstest, sends no Origin. `allow_missing_origin` comes
 * with the admission checks (issue 3); until that lands the key does not exist
 * and no Origin check runs, so it is only set when the schema knows it.
 */
const noOrigin = 'allow_missing_origin' in echoServiceSchema.shape ? { allow_missing_origin: true } : {};

before(async () => {
  gw = await startGateway({
    services: {
      autobahn: { path: '/autobahn', type: 'echo', max_message: '16MiB', max_fragments: 65_537, compression: true, ...noOrigin },
      echo: { path: '/echo', type: 'echo', ...noOrigin },
      // Context takeover allowed both ways: the compressors and decompressors kept per connection.
      takeover: {
        path: '/takeover', type: 'echo', max_message: '16MiB', max_fragments: 65_536,
        compression: { server_no_context_takeover: false, client_no_context_takeover: false }, ...noOrigin,
      },
    },
    // Audit lines are warnings; debug lines of ~400 connections are not needed.
    log: { level: 'info' },
    // ~400 connections from 127.0.0.1 in quick succession and 1,000-message cases: the handshake
    // and per-connection rate limits (tested in test/integration/admission) are lifted here.
    limits: { handshake_rate: 1_000_000, handshake_burst: 1_000_000, message_rate: 1_000_000, control_rate: 1_000_000, byte_rate: '1GiB' },
  });
  canary = new WebSocket(gw.url('/autobahn'), { perMessageDeflate: false });
  await once(canary, 'open');
  baseline = snapshotResources();
});

after(async () => {
  if (canary) {
    canary.close();
    await once(canary, 'close');
  }
  await gw?.stop();
  const out = process.env.CONFORMANCE_REPORT;
  if (out) {
    writeFileSync(out, renderReport([
      {
        title: 'Autobahn profile',
        setup: 'Echo service with `max_message: 16MiB`, `max_fragments: 65537` (the 9.3.1/9.4.1 cases send 4 MiB in 65,536 64-byte fragments and end with an empty final frame, which counts as a fragment too) ' +
          'and `compression: true` (permessage-deflate with its defaults); everything else default. Cases 1–10 offer no ' +
          'extension, as in Autobahn; 12 and 13 offer permessage-deflate. All cases must be OK, NON-STRICT or INFORMATIONAL. ' +
          `Categories 12 and 13 sent ${deflateMessageCount()} messages per case (Autobahn: 1000), sliced from ${testDataSource()}: ` +
          `${describeTestData().join('; ')}.`,
        results: autobahnResults,
      },
      {
        title: 'Production defaults, category 9',
        setup: 'Echo service with the defaults (`max_message: 1MiB`, `max_fragments: 1024`). Messages up to 1 MiB pass; larger ones must be refused with close 1009 by the gateway — Autobahn scores that FAILED (the connection was failed by the server), which is the expected outcome for this profile.',
        results: productionResults,
        expectedOutcome: productionExpected,
      },
      {
        title: 'Compression with context takeover, categories 12 and 13',
        setup: 'Echo service as in the Autobahn profile, with `compression: { server_no_context_takeover: false, client_no_context_takeover: false }`: ' +
          'the gateway keeps a compressor and a decompressor per connection and uses them across messages, and does not ask clients for ' +
          `no context takeover. ${deflateMessageCount()} messages per case. All cases must be OK.`,
        results: takeoverResults,
      },
    ], {
      date: new Date().toISOString().slice(0, 10),
      commit: gitCommit(),
      node: process.version,
    }));
  }
});

function gitCommit(): string {
  try { return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim(); } catch { return 'unknown'; }
}

function target(path: string): Target {
  return { host: '127.0.0.1', port: gw.port, path };
}

/** The canary must still round-trip a message. */
async function canaryEchoes(): Promise<void> {
  const text = `canary ${++canarySeq}`;
  const got = new Promise<string>((resolve, reject) => {
    canary.once('message', (d) => resolve(String(d)));
    canary.once('close', (code) => reject(new Error(`canary closed with ${code}`)));
  });
  canary.send(text);
  assert.equal(await got, text, 'the canary connection stopped echoing');
}

/** A case in which the gateway itself must end the connection for bad input. */
function gatewayMustFail(c: ConformanceCase): boolean {
  return !c.informational && !c.close.codes.includes(NORMAL);
}

const violationLines = (): LogLine[] => gw.logs.filter((l) => l.audit === true && typeof l.reason === 'string' && l.msg.startsWith('connection closed'));

/** The audit line is written as the gateway closes; give the logger a few turns of the event loop. */
async function newViolation(before: number, code: number | undefined): Promise<LogLine | undefined> {
  for (let i = 0; i < 200; i++) {
    const found = violationLines().slice(before).find((l) => code === undefined || l.code === code);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 5));
  }
  return undefined;
}

function explain(r: CaseResult): string {
  return [
    `${r.id}: ${r.verdict} (behaviour ${r.behavior}, close ${r.behaviorClose})`,
    `  result: ${r.result}`,
    `  close:  ${r.resultClose}; server close code ${r.remoteCloseCode ?? 'none'}${r.remoteCloseReason ? ` "${r.remoteCloseReason}"` : ''}; closedByMe=${r.closedByMe} droppedByMe=${r.droppedByMe} wasClean=${r.wasClean}`,
    `  received: ${r.received.join(', ') || '(nothing)'}`,
    '  wire:',
    ...r.wirelog.map((l) => `    ${l}`),
  ].join('\n');
}

/**
 * The run's deadline: every case has its own. With 1000 messages in 12/13 (the report
 * run) each of the two runs that hold them takes about 50 min on 2 quiet cores, so the
 * deadline grows with the message count rather than cutting a slow but passing run short.
 */
const DEFLATE_MESSAGES = Number(process.env.CONFORMANCE_DEFLATE_MESSAGES ?? '10');
const WHOLE_RUN = { timeout: (DEFLATE_MESSAGES > 100 ? 240 : 60) * 60_000 };

test('Autobahn profile: every case passes', WHOLE_RUN, async (t) => {
  for (const c of CASES) {
    // The compression cases keep wstest's own limit (up to 480 s for 1000 messages of 128 KiB); a passing server is far quicker.
    const timeout = c.deflate ? c.after.ms + 60_000 : 60_000;
    await t.test(`${c.id} ${c.description.slice(0, 80)}`, { timeout }, async () => {
      const violationsBefore = violationLines().length;
      const r = await runCase(c, target('/autobahn'), c.deflate ? { ...RUN_OPTIONS, maxAfterMs: c.after.ms } : RUN_OPTIONS);
      autobahnResults.push(r);
      assert.ok(isPassing(r.verdict), explain(r));
      if (gatewayMustFail(c)) {
        const line = await newViolation(violationsBefore, r.remoteCloseCode);
        assert.ok(line, `${c.id}: no audit line for the violation (close code ${r.remoteCloseCode ?? 'none'})`);
        assert.ok(line.reason, 'the audit line names a reason');
      }
      await canaryEchoes();
    });
  }
});

test('production defaults: category 9 passes up to 1 MiB and ends in 1009 above', async (t) => {
  for (const c of CASES.filter((x) => x.category === 9)) {
    const length = c.echo?.length ?? c.roundTrips?.length ?? 0;
    const tooBig = length > PRODUCTION_MAX_MESSAGE;
    if (tooBig) productionExpected.set(c.id, 'close 1009 from the gateway (message over max_message)');
    await t.test(`${c.id} (production) ${tooBig ? 'refused with 1009' : 'passes'}`, { timeout: 60_000 }, async () => {
      const violationsBefore = violationLines().length;
      const r = await runCase(c, target('/echo'), RUN_OPTIONS);
      productionResults.push(r);
      if (!tooBig) {
        assert.ok(isPassing(r.verdict), explain(r));
      } else {
        // The gateway fails the connection; the Close may be lost to a TCP reset while our
        // client is still writing, so the audit line is the authority on the code.
        assert.equal(r.closedByMe, false, `the gateway must end the connection\n${explain(r)}`);
        if (r.remoteCloseCode !== undefined) assert.equal(r.remoteCloseCode, 1009, explain(r));
        const line = await newViolation(violationsBefore, 1009);
        assert.ok(line, `${c.id}: no audit line with close code 1009\n${explain(r)}`);
      }
      await canaryEchoes();
    });
  }
});

test('context takeover both ways: categories 12 and 13 pass', WHOLE_RUN, async (t) => {
  for (const c of CASES.filter((x) => x.deflate !== undefined)) {
    await t.test(`${c.id} (takeover)`, { timeout: c.after.ms + 60_000 }, async () => {
      const r = await runCase(c, target('/takeover'), { ...RUN_OPTIONS, maxAfterMs: c.after.ms });
      takeoverResults.push(r);
      assert.ok(isPassing(r.verdict), explain(r));
    });
  }
});

test('a service without compression declines a permessage-deflate offer and plain frames still echo', async () => {
  // What wstest does before every 12.x/13.x case: offer the extension and look at the 101.
  const { socket, headers } = await openRaw('127.0.0.1', gw.port, '/echo', {
    headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' },
  });
  try {
    assert.equal(headers['sec-websocket-extensions'], undefined, 'the gateway must not accept an extension it does not implement');
    const reader = new FrameReader();
    const echoed = new Promise<Buffer>((resolve, reject) => {
      socket.on('data', (d: Buffer) => { for (const f of reader.push(d)) if (f.opcode === 1) resolve(f.payload); });
      socket.once('close', () => reject(new Error('closed before the echo')));
    });
    socket.write(encodeFrame({ opcode: 1, payload: Buffer.from('uncompressed') }));
    assert.equal((await echoed).toString(), 'uncompressed');
  } finally {
    socket.destroy();
  }
  await canaryEchoes();
});

test('nothing is left behind and nothing went wrong inside the gateway', async () => {
  // Only the canary stays open; channels unregister as their sockets close.
  for (let i = 0; i < 200 && gw.gateway.front.openChannels !== 1; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(gw.gateway.front.openChannels, 1);
  await assertNoLeaks(baseline, { timeoutMs: 2000 });
  const errors = gw.logs.filter((l) => l.level === 'error' || l.level === 'fatal');
  assert.deepEqual(errors, [], 'the gateway logged errors during the run');
});
