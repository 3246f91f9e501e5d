/**
 * Structured JSON logs (pino). Bad input is logged through a per-kind rate
 * limiter so that an attacker cannot turn the log into the denial of service.
 * Log lines never carry credentials: callers pass reason codes and addresses only.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { name: 'gatehouse' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // "level":"info", not pino's number: what operators grep for and log shippers map.
      formatters: { level: (label) => ({ level: label }) },
      // Belt and braces: whatever a caller passes, these never reach the log.
      redact: {
        paths: ['authorization', 'cookie', 'password', 'token', 'ticket', '*.authorization', '*.cookie', '*.password', '*.token', '*.ticket', 'headers.authorization', 'headers.cookie'],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination({ sync: false }),
  );
}

/**
 * Lets at most `perSecond` lines of one kind through each second; the number
 * suppressed is reported in the next line that gets through.
 */
export class RateLimitedLog {
  private readonly windows = new Map<string, { start: number; count: number; suppressed: number }>();
  constructor(private readonly log: Logger, private readonly perSecond: number) {}

  warn(kind: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    let w = this.windows.get(kind);
    if (!w || now - w.start >= 1000) {
      const suppressed = w ? w.suppressed : 0;
      w = { start: now, count: 0, suppressed: 0 };
      this.windows.set(kind, w);
      if (suppressed > 0) fields = { ...fields, suppressed };
    }
    if (w.count < this.perSecond) {
      w.count++;
      this.log.warn({ event: kind, ...fields }, msg);
    } else {
      w.suppressed++;
    }
  }
}
