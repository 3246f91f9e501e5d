/**
 * The admin listener (root `admin:`): metrics, health, the admin API and the
 * dashboard, on a socket of its own — never reachable through a client
 * listener. Off unless configured.
 */
import { z } from 'zod';
import { port } from './listener.js';

export const adminSchema = z.strictObject({
  /** Address to listen on; keep it on loopback or a private network. */
  host: z.string().min(1).default('127.0.0.1'),
  port: port(),
  /**
   * Bearer token of the admin API (`Authorization: Bearer …`), at least 16
   * characters; use `${ADMIN_TOKEN}`. Empty or absent: the API answers 401
   * to everyone (metrics, health and the dashboard page stay served).
   */
  token: z.string().optional().transform((t) => (t === undefined || t === '' ? undefined : t))
    .refine((t) => t === undefined || t.length >= 16, 'the admin token needs at least 16 characters'),
  /**
   * Host names (Host header, without port) the admin listener answers for,
   * besides IP addresses and `localhost`. Any other name gets 421: a web page
   * that rebinds its own DNS name to this address reads nothing here.
   */
  hosts: z.array(z.string().min(1).transform((h) => h.toLowerCase())).default([]),
  /** Serve the live dashboard at `/`. */
  dashboard: z.boolean().default(true),
});

export type AdminConfig = z.output<typeof adminSchema>;

export const adminRootFields = {
  admin: adminSchema.optional(),
};
