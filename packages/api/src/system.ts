/** Liveness on the wire. */
import { z } from 'zod';

export const HealthSchema = z.object({
  status: z.enum(['ok', 'unavailable']),
  database: z.enum(['ok', 'unavailable']),
});
export type Health = z.infer<typeof HealthSchema>;
