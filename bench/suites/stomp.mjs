/**
 * Suite `stomp`: what STOMP inspection costs (issue 13). The same Gatehouse
 * process serves, for each backend kind, two services in front of the same
 * stand-in broker (bench/servers/stomp-echo.mjs: CONNECTED for CONNECT, and
 * for each SEND a MESSAGE of the same size): one with `inspect.stomp` (every
 * frame parsed both ways, each SEND's destination held to the policy) and
 * one passthrough. Same run, alternating order.
 *
 *   load generator ─▶ Gatehouse /stomp-tcp-inspect (inspector) ─▶ stomp-echo over tcp (as RabbitMQ's STOMP port)
 *   load generator ─▶ Gatehouse /stomp-tcp-pass (passthrough)  ─▶ the same
 *   load generator ─▶ Gatehouse /stomp-ws-inspect (inspector)  ─▶ stomp-echo over WebSocket (as Web-STOMP)
 *   load generator ─▶ Gatehouse /stomp-ws-pass (passthrough)   ─▶ the same
 *
 * Each connection opens with CONNECT / CONNECTED (1.2), then sends a 1 KiB
 * SEND frame (a binary message) and waits for the MESSAGE before sending the
 * next (closed loop, one message in flight per connection), at 1 and 50
 * connections. The metric is Gatehouse's CPU per message (the SEND in and
 * the MESSAGE out), the inspector in the "Gatehouse" column, the passthrough
 * in the other. A refused SEND would end the connection (ERROR, 1008), which
 * fails the measurement.
 *
 * Target (issue 13): CPU per message with the inspector at most 1.15× the passthrough's.
 */
import { inspectorVsPassthrough } from '../lib/inspector-suite.mjs';
import { GATEHOUSE_ECHO_SERVICE, startStompEcho } from '../lib/targets.mjs';

export const name = 'stomp';
export const description = 'STOMP inspection: 1 KiB SEND frames through the inspector vs passthrough, tcp and WebSocket backends (CPU per message, closed loop)';

/** Backend kinds: `tcp` (a byte stream) and `ws` (WebSocket); stomp-echo's --transport. */
const BACKENDS = ['tcp', 'ws'];
const CASES = BACKENDS.flatMap((backend) => [1, 50].map((conns) => ({ backend, conns, label: `1 KiB SEND × ${conns} conn, ${backend} backend` })));
const SIZE = 1024;

/** Exported for bench/callgrind.mjs (the same workload, counted in instructions). */
export const CONNECT = Buffer.from('CONNECT\naccept-version:1.2\nhost:/\nheart-beat:0,0\n\n\0');

/** A SEND frame of exactly `size` bytes, as stompjs writes one (content-length, a text body). */
function sendFrame(size) {
  const head = (body) => `SEND\ndestination:/queue/bench\ncontent-type:text/plain\ncontent-length:${body}\n\n`;
  let body = size - head(size).length - 1;
  if (head(body).length + body + 1 !== size) body++;
  const out = Buffer.alloc(size, 0x62);
  out.write(head(body), 0, 'latin1');
  out[size - 1] = 0;
  return out;
}

export const SEND = sendFrame(SIZE);

/** A few patterns, the one that matches last (as a real policy's list). */
const POLICY = {
  send: ['/exchange/chat/room.*', '/topic/news.**', '/queue/bench'],
  subscribe: ['/queue/bench'],
};

/** An inspected and a passthrough service for each started backend, by kind (`tcp`, `ws`): paths /stomp-<kind>-<inspect|pass>. */
export function services(backends) {
  const out = {};
  for (const [kind, server] of Object.entries(backends)) {
    const base = {
      ...GATEHOUSE_ECHO_SERVICE,
      type: kind === 'tcp' ? 'tcp' : 'websocket',
      backend: kind === 'tcp' ? `tcp://${server.host}:${server.port}` : `ws://${server.host}:${server.port}${server.path}`,
      subprotocols: ['v12.stomp'],
      require_subprotocol: true,
    };
    out[`stomp-${kind}-inspect`] = { ...base, path: `/stomp-${kind}-inspect`, inspect: { stomp: POLICY } };
    out[`stomp-${kind}-pass`] = { ...base, path: `/stomp-${kind}-pass` };
  }
  return out;
}

async function start(ctx) {
  const backends = { tcp: await startStompEcho('tcp'), ws: await startStompEcho('ws') };
  const gatehouse = await ctx.startServer('gatehouse', { config: { services: services(backends) } });
  return { gatehouse, stop: async () => { await gatehouse.stop(); await Promise.all(Object.values(backends).map((b) => b.stop())); } };
}

export function run(ctx) {
  return inspectorVsPassthrough(ctx, {
    suite: name,
    cases: CASES,
    // From a byte stream the inspector sends UTF-8 frames as text, the passthrough relay binary: either will do.
    exchange: { subprotocol: 'v12.stomp', hello: CONNECT, message: SEND, anyType: true },
    start: () => start(ctx),
    pathOf: (c, setup) => `/stomp-${c.backend}-${setup}`,
  });
}
