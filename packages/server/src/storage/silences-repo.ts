/** Alert silences: rows with optional matchers (kind, area, agent code) and an expiry. */
import { and, desc, eq, gt, sql } from 'drizzle-orm';
import type { Database } from './database.js';
import { alertSilences, type SilenceRow } from './schema.js';

export interface NewSilence {
  kind: string | null;
  area: string | null;
  agentCode: string | null;
  comment: string;
  createdBy: string;
  expiresAt: Date;
}

export class SilencesRepo {
  constructor(private readonly db: Database) {}

  async create(s: NewSilence): Promise<SilenceRow> {
    const [row] = await this.db.insert(alertSilences).values(s).returning();
    return row as SilenceRow;
  }

  async get(id: string): Promise<SilenceRow | undefined> {
    const [row] = await this.db.select().from(alertSilences).where(eq(alertSilences.id, id));
    return row;
  }

  /** Active ones (not expired at `now`), or every one; newest first. */
  list(all: boolean, now = new Date()): Promise<SilenceRow[]> {
    const q = this.db.select().from(alertSilences);
    return (all ? q : q.where(gt(alertSilences.expiresAt, now))).orderBy(
      desc(alertSilences.createdAt),
      desc(alertSilences.id),
    );
  }

  /** Ends a silence now (an expired one is left as it was). */
  async expire(id: string): Promise<SilenceRow | undefined> {
    const [row] = await this.db
      .update(alertSilences)
      .set({ expiresAt: sql`now()` })
      .where(and(eq(alertSilences.id, id), gt(alertSilences.expiresAt, sql`now()`)))
      .returning();
    return row ?? this.get(id);
  }
}
