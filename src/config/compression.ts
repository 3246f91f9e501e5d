/**
 * Config keys of permessage-deflate (RFC 7692, issue 19): the per-service
 * `compression:` field and the gateway-wide cap on zlib work.
 *
 * Off unless a service asks for it: `compression: true` takes the defaults
 * below, a block sets them. The defaults keep an idle compressed connection
 * free of zlib memory: neither side keeps a compression context between
 * messages (see docs/websocket.md, "Compression").
 */
import { z } from 'zod';
import { size } from './units.js';

/** Window bits the gateway can honour: zlib cannot make a raw deflate stream with a 256-byte window (8). */
const windowBits = () => z.number().int().min(9).max(15);

export const compressionSettingsSchema = z.strictObject({
  /** Messages shorter than this are sent uncompressed (the frame header would eat the saving). */
  threshold: size().default(1024),
  /** zlib compression level, 1 (fastest) to 9 (smallest); 6 is zlib's default. */
  level: z.number().int().min(1).max(9).default(6),
  /** zlib memLevel, 1–9: the compressor's hash memory is 2^(mem_level+9) bytes. */
  mem_level: z.number().int().min(1).max(9).default(8),
  /**
   * Most window bits the gateway compresses with (its compressor uses
   * 2^(bits+2) bytes; a client may ask for fewer).
   */
  server_max_window_bits: windowBits().default(15),
  /**
   * Most window bits a client may compress with: the gateway's decompressor
   * holds 2^bits bytes. Below 15, an offer that cannot promise this (no
   * `client_max_window_bits` in it) is declined.
   */
  client_max_window_bits: windowBits().default(15),
  /**
   * The gateway starts every message with an empty compression context and
   * says so (`server_no_context_takeover`): no compressor is kept per
   * connection between messages. false keeps one per connection (better
   * ratio for small similar messages, 2^(bits+2) + 2^(mem_level+9) bytes each).
   */
  server_no_context_takeover: z.boolean().default(true),
  /**
   * Ask clients to start every message afresh (`client_no_context_takeover`):
   * no decompressor is kept per connection between messages. false lets
   * clients refer to earlier messages (2^client_max_window_bits bytes kept per connection).
   */
  client_no_context_takeover: z.boolean().default(true),
});

export type CompressionSettings = z.output<typeof compressionSettingsSchema>;

const COMPRESSION_DEFAULTS: CompressionSettings = Object.freeze(compressionSettingsSchema.parse({}));

export const compressionServiceFields = {
  /**
   * permessage-deflate on the WebSocket transport of this service: false (the
   * default), true (the defaults), or a block of settings. The HTTP fallback is never compressed.
   */
  compression: z.union([z.boolean(), compressionSettingsSchema]).default(false)
    .transform((c): CompressionSettings | false => (c === true ? COMPRESSION_DEFAULTS : c)),
};

export const compressionRootFields = {
  /**
   * Most zlib operations (one message or piece compressed or decompressed)
   * running at once in the whole gateway; more wait their turn in order, none
   * is dropped. zlib work runs on libuv's thread pool (4 threads unless
   * UV_THREADPOOL_SIZE says otherwise).
   */
  compression_concurrency: z.number().int().min(1).max(1024).default(8),
};
