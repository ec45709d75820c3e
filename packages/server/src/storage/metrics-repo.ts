/**
 * Metrics over time: one row per agent (agent_metrics) and per package (package_metrics) per
 * sampling instant. Instants are the start of their interval, so servers sharing a database
 * write each sample once (the primary key; later writers do nothing). Old rows are purged.
 */
import { and, asc, eq, gte, lt } from 'drizzle-orm';
import type { Database } from './database.js';
import { agentMetrics, packageMetrics, type AgentMetricsRow, type PackageMetricsRow } from './schema.js';

function chunks<T>(items: readonly T[], size = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export class MetricsRepo {
  constructor(private readonly db: Database) {}

  async insert(system: readonly AgentMetricsRow[], packages: readonly PackageMetricsRow[]): Promise<void> {
    for (const part of chunks(system)) await this.db.insert(agentMetrics).values(part).onConflictDoNothing();
    for (const part of chunks(packages))
      await this.db.insert(packageMetrics).values(part).onConflictDoNothing();
  }

  /** An agent's samples since `from`, oldest first; its packages' too (one package, or all). */
  async history(
    agentCode: string,
    from: Date,
    pkg?: string,
  ): Promise<{ system: AgentMetricsRow[]; packages: PackageMetricsRow[] }> {
    const system = await this.db
      .select()
      .from(agentMetrics)
      .where(and(eq(agentMetrics.agentCode, agentCode), gte(agentMetrics.at, from)))
      .orderBy(asc(agentMetrics.at));
    const conds = [eq(packageMetrics.agentCode, agentCode), gte(packageMetrics.at, from)];
    if (pkg !== undefined) conds.push(eq(packageMetrics.package, pkg));
    const packages = await this.db
      .select()
      .from(packageMetrics)
      .where(and(...conds))
      .orderBy(asc(packageMetrics.package), asc(packageMetrics.at));
    return { system, packages };
  }

  /** Deletes samples older than `before`; answers how many rows went. */
  async purge(before: Date): Promise<number> {
    const a = await this.db
      .delete(agentMetrics)
      .where(lt(agentMetrics.at, before))
      .returning({ c: agentMetrics.agentCode });
    const p = await this.db
      .delete(packageMetrics)
      .where(lt(packageMetrics.at, before))
      .returning({ c: packageMetrics.agentCode });
    return a.length + p.length;
  }
}
