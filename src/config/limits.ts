/** Gateway-wide limits. Per-service limits live with the service. */
import { z } from 'zod';
import { duration, size } from './units.js';

export const limitsSchema = z.strictObject({
  /** Total bytes of the request line and headers. Over → 431. */
  header_bytes: size().default(16 * 1024),
  /** Most header lines in a request. Over → 431 (never truncated). */
  header_count: z.number().int().positive().default(100),
  /** Time to receive the whole request head. Over → 408. */
  header_timeout: duration().default(10_000),
});

export type LimitsConfig = z.output<typeof limitsSchema>;
