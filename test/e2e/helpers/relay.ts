/**
 * A TCP relay between a client and the gateway that can cut every connection
 * passing through it at once — a real network break (RST/FIN mid-response),
 * not a simulated one.
 */
import { createServer, connect, type Socket } from 'node:net';
import { once } from 'node:events';

export interface Relay { port: number; cuts: number; cut(): number; stop(): Promise<void> }

export async function startRelay(targetPort: number): Promise<Relay> {
  const pairs = new Set<[Socket, Socket]>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const drop = (): void => { pairs.delete(pair); client.destroy(); upstream.destroy(); };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const relay: Relay = {
    port: (server.address() as { port: number }).port,
    cuts: 0,
    cut() {
      const n = pairs.size;
      for (const [a, b] of [...pairs]) { a.resetAndDestroy(); b.destroy(); }
      pairs.clear();
      relay.cuts++;
      return n;
    },
    async stop() {
      for (const [a, b] of pairs) { a.destroy(); b.destroy(); }
      server.close();
      await once(server, 'close');
    },
  };
  return relay;
}
