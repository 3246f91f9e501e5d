/**
 * The zlib families of `/metrics`: what permessage-deflate costs the process
 * now (operations running and waiting in the one queue, contexts alive) and
 * what it did (bytes in and out of compression and decompression). Read at
 * scrape time from zlib-pool.ts, whose state is the process's, not a
 * service's: so these carry no service label (the per-service family is
 * `gatehouse_compression_negotiations_total`).
 */
import type { Metrics, Sample } from '../observe/metrics.js';
import { spareContexts, zlibQueue, zlibStats } from './zlib-pool.js';

export function registerCompressionMetrics(metrics: Metrics): void {
  metrics.sampledFamily('gatehouse_compression_operations', 'gauge',
    'zlib operations (one message or piece compressed or decompressed) in the process, by state: running (at most websocket.compression_concurrency) or waiting for a turn',
    ['state'], (): Sample[] => [
      { labels: { state: 'running' }, value: zlibQueue.active },
      { labels: { state: 'waiting' }, value: zlibQueue.queued },
    ]);
  metrics.sampledFamily('gatehouse_compression_contexts', 'gauge',
    'zlib contexts alive in the process, by kind (deflate, inflate) and state (in_use: a message in progress or a connection\'s own context with context takeover; spare: on the free list, at most websocket.compression_concurrency of each)',
    ['kind', 'state'], (): Sample[] => {
      const spare = spareContexts();
      return [
        { labels: { kind: 'deflate', state: 'in_use' }, value: zlibStats.deflaters - spare.deflaters },
        { labels: { kind: 'deflate', state: 'spare' }, value: spare.deflaters },
        { labels: { kind: 'inflate', state: 'in_use' }, value: zlibStats.inflaters - spare.inflaters },
        { labels: { kind: 'inflate', state: 'spare' }, value: spare.inflaters },
      ];
    });
  metrics.sampledFamily('gatehouse_compression_bytes_total', 'counter',
    'Bytes through zlib in the process, by operation (deflate: messages compressed; inflate: messages decompressed) and side (plain, compressed): the compression ratio is plain / compressed',
    ['operation', 'side'], (): Sample[] => [
      { labels: { operation: 'deflate', side: 'plain' }, value: zlibStats.deflatedIn },
      { labels: { operation: 'deflate', side: 'compressed' }, value: zlibStats.deflatedOut },
      { labels: { operation: 'inflate', side: 'compressed' }, value: zlibStats.inflatedIn },
      { labels: { operation: 'inflate', side: 'plain' }, value: zlibStats.inflatedOut },
    ]);
}
