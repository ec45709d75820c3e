/**
 * SSH host key fingerprints recorded on first use, shared by every deployment (and every server
 * on the same database): the install engine's HostKeyStore (@opsplane/deploy). The `host_port`
 * column holds the pin key: `device:<id>` for devices (deviceHostKeyId — pins belong to the
 * device, not to its address); rows keyed `host:port` were written before that and are no
 * longer consulted.
 */
import { eq, sql } from 'drizzle-orm';
import type { HostKeyStore } from '@opsplane/deploy';
import type { Database } from './database.js';
import { hostKeys } from './schema.js';

export class HostKeysRepo implements HostKeyStore {
  constructor(private readonly db: Database) {}

  async get(hostPort: string): Promise<string | undefined> {
    const [row] = await this.db
      .select({ f: hostKeys.fingerprint })
      .from(hostKeys)
      .where(eq(hostKeys.hostPort, hostPort));
    return row?.f;
  }

  async record(hostPort: string, fingerprint: string): Promise<void> {
    await this.db
      .insert(hostKeys)
      .values({ hostPort, fingerprint })
      .onConflictDoUpdate({
        target: hostKeys.hostPort,
        set: { fingerprint, updatedAt: sql`now()` },
      });
  }

  async forget(hostPort: string): Promise<boolean> {
    const rows = await this.db.delete(hostKeys).where(eq(hostKeys.hostPort, hostPort)).returning();
    return rows.length > 0;
  }
}
