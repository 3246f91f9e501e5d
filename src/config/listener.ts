/** A `listen` entry: one TCP (optionally TLS) socket the gateway accepts on. */
import { z } from 'zod';

/** A port as a number, or as a numeric string (so "${PORT}" works). */
export const port = () =>
  z.union([z.number(), z.string().regex(/^\d+$/, 'not a port number').transform(Number)])
    .pipe(z.number().int().min(0).max(65535));

export const listenerSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: port(),
});

export type ListenerConfig = z.output<typeof listenerSchema>;
