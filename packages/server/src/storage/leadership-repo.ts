/**
 * Fencing for cluster-wide duties: the term of the replica etcd elected last, per duty. A new
 * leader raises the term (never lowers it); every write a leader makes runs in a transaction
 * that first checks the stored term is still its own — so a leader that lost its election (and
 * does not know yet) cannot write over its successor.
 */
import { eq, sql } from 'drizzle-orm';
import { OpsplaneError } from '@opsplane/models';
import type { Database } from './database.js';
import { leadership } from './schema.js';

/** A write of a leader whose term is over. */
export class FencedError extends OpsplaneError {
  constructor(duty: string, term: number, current: number | undefined) {
    super('fenced', `leadership of '${duty}' moved on (term ${current ?? '?'}, ours ${term})`, {
      status: 409,
    });
  }
}

export class LeadershipRepo {
  constructor(private readonly db: Database) {}

  /** Records `term` as the duty's current term if it is newer; true when it is ours now. */
  async claim(duty: string, term: number, holder: string): Promise<boolean> {
    const rows = await this.db
      .insert(leadership)
      .values({ duty, term, holder })
      .onConflictDoUpdate({
        target: leadership.duty,
        set: { term, holder, since: sql`now()` },
        setWhere: sql`${leadership.term} < ${term}`,
      })
      .returning({ term: leadership.term });
    return rows.length > 0;
  }

  /** Throws FencedError unless `term` is the duty's current term (locks the row for the transaction). */
  async assert(duty: string, term: number): Promise<void> {
    const [row] = await this.db
      .select({ term: leadership.term })
      .from(leadership)
      .where(eq(leadership.duty, duty))
      .for('share');
    if (row?.term !== term) throw new FencedError(duty, term, row?.term);
  }

  async current(duty: string): Promise<{ term: number; holder: string } | undefined> {
    const [row] = await this.db.select().from(leadership).where(eq(leadership.duty, duty));
    return row;
  }
}
