/**
 * Alerts as the API serves them: the list (filter by status, kind, area, silenced; newest
 * first), one alert, and acknowledging one (audited). The alert engine raises and resolves them;
 * an acknowledgement records who is on it and changes nothing else (no notification). Silences
 * (by rule, area and/or agent, until they expire) hold back the notifications of the alerts
 * they match; those alerts still fire and show, with `silenced_by`. Also the one place alert and
 * silence rows become the API's Alert and Silence.
 */
import { ConflictError, NotFoundError } from '@opsplane/models';
import {
  iso,
  isoOrNull,
  type Alert,
  type AlertKind,
  type AlertListQuery,
  type AlertListResponse,
  type AlertSeverity,
  type AlertStatus,
  type Silence,
  type SilenceCreate,
  type SilenceListResponse,
} from '@opsplane/api';
import type { AlertRow, SilenceRow } from '../storage/schema.js';
import type { Store } from '../storage/store.js';
import { requireInAreas, type AreaActor } from './access.js';
import { changesBetween, type AuditTrail } from './audit-trail.js';

export function toSilence(r: SilenceRow, now = Date.now()): Silence {
  return {
    id: r.id,
    kind: (r.kind as AlertKind | null) ?? null,
    area: r.area,
    agent_code: r.agentCode,
    comment: r.comment,
    created_by: r.createdBy,
    created_at: iso(r.createdAt),
    expires_at: iso(r.expiresAt),
    active: r.expiresAt.getTime() > now,
  };
}

/** The agent an alert is about: agent:<code>, package:<code>/<name>, or its agent_code label. */
export function alertAgent(a: Pick<AlertRow, 'subject' | 'labels'>): string | undefined {
  if (a.labels.agent_code) return a.labels.agent_code;
  if (a.subject.startsWith('agent:')) return a.subject.slice('agent:'.length);
  if (a.subject.startsWith('package:')) {
    const rest = a.subject.slice('package:'.length);
    const i = rest.lastIndexOf('/');
    return i > 0 ? rest.slice(0, i) : undefined;
  }
  return undefined;
}

/** True when every matcher the (active) silence has holds for the alert. */
export function silenceMatches(
  s: SilenceRow,
  a: Pick<AlertRow, 'kind' | 'area' | 'subject' | 'labels'>,
): boolean {
  if (s.kind !== null && s.kind !== a.kind) return false;
  if (s.area !== null && s.area !== a.area) return false;
  if (s.agentCode !== null && s.agentCode !== alertAgent(a)) return false;
  return true;
}

/** The first active silence matching the alert, if any. */
export function silenceOf(
  silences: readonly SilenceRow[],
  a: AlertRow,
  now = Date.now(),
): SilenceRow | undefined {
  return silences.find((s) => s.expiresAt.getTime() > now && silenceMatches(s, a));
}

export function toAlert(r: AlertRow, silencedBy: string | null = null): Alert {
  return {
    id: r.id,
    kind: r.kind as AlertKind,
    severity: r.severity as AlertSeverity,
    subject: r.subject,
    area: r.area,
    title: r.title,
    message: r.message,
    labels: r.labels,
    status: r.status as AlertStatus,
    first_seen: iso(r.firstSeen),
    last_seen: iso(r.lastSeen),
    resolved_at: isoOrNull(r.resolvedAt),
    acknowledged_by: r.acknowledgedBy,
    acknowledged_at: isoOrNull(r.acknowledgedAt),
    silenced_by: silencedBy,
  };
}

export class AlertService {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditTrail,
    /** The area of an agent (device, else the agent view); undefined when unknown. */
    private readonly agentArea: (code: string) => Promise<string | undefined> = async () => undefined,
  ) {}

  async list(q: AlertListQuery): Promise<AlertListResponse> {
    const silences = await this.store.silences.list(false);
    const annotate = (r: AlertRow) => toAlert(r, silenceOf(silences, r)?.id ?? null);
    if (q.silenced === undefined) {
      const { items, total } = await this.store.alerts.list(q);
      return { items: items.map(annotate), total, page: q.page, pageSize: q.pageSize };
    }
    // Silenced is computed, not stored: filter the newest 5000 here.
    const want = q.silenced === 'true';
    const { items } = await this.store.alerts.list({ ...q, page: 1, pageSize: 5000 });
    const all = items.map(annotate).filter((a) => (a.silenced_by !== null) === want);
    const start = (q.page - 1) * q.pageSize;
    return {
      items: all.slice(start, start + q.pageSize),
      total: all.length,
      page: q.page,
      pageSize: q.pageSize,
    };
  }

  async get(id: string): Promise<Alert> {
    const a = await this.store.alerts.get(id);
    if (!a) throw new NotFoundError(`alert ${id} not found`);
    return toAlert(a, silenceOf(await this.store.silences.list(false), a)?.id ?? null);
  }

  async acknowledge(caller: AreaActor, id: string): Promise<Alert> {
    const row = await this.audit.run(
      caller,
      { action: 'alert.ack', targetType: 'alert', targetId: id },
      async (tx, spec) => {
        const a = await tx.alerts.get(id);
        if (!a) throw new NotFoundError(`alert ${id} not found`);
        requireInAreas(caller, [a.area], 'operator', 'acknowledging this alert');
        if (a.status !== 'firing')
          throw new ConflictError(`alert ${id} is resolved already; nothing to acknowledge`);
        spec.details = { kind: a.kind, subject: a.subject };
        const acked = (await tx.alerts.acknowledge(id, caller.username)) ?? a;
        spec.changes = changesBetween(
          { acknowledged_by: a.acknowledgedBy, acknowledged_at: isoOrNull(a.acknowledgedAt) },
          { acknowledged_by: acked.acknowledgedBy, acknowledged_at: isoOrNull(acked.acknowledgedAt) },
        );
        return acked;
      },
    );
    return this.get(row.id);
  }

  // ------------------------------------------------------------------------------ silences

  async silences(all: boolean): Promise<SilenceListResponse> {
    const rows = await this.store.silences.list(all);
    return { silences: rows.map((r) => toSilence(r)), total: rows.length };
  }

  /**
   * The areas a silence concerns, for the role check: its area, or its agent's (device
   * function_area, else where the agent view saw it); '' (every area: the caller's own role)
   * when it names neither.
   */
  private async silenceAreas(s: { area: string | null; agentCode: string | null }): Promise<string[]> {
    if (s.area !== null) return [s.area];
    if (s.agentCode !== null) {
      const area = await this.agentArea(s.agentCode);
      return [area ?? ''];
    }
    return [''];
  }

  async createSilence(caller: AreaActor, body: SilenceCreate): Promise<Silence> {
    const draft = { area: body.area ?? null, agentCode: body.agent_code ?? null };
    requireInAreas(caller, await this.silenceAreas(draft), 'operator', 'this silence');
    const row = await this.audit.run(
      caller,
      { action: 'silence.create', targetType: 'silence' },
      async (tx, spec) => {
        const r = await tx.silences.create({
          kind: body.kind ?? null,
          ...draft,
          comment: body.comment,
          createdBy: caller.username,
          expiresAt: new Date(Date.now() + body.duration),
        });
        spec.targetId = r.id;
        spec.changes = changesBetween(null, toSilence(r), ['id', 'created_at', 'active']);
        return r;
      },
    );
    return toSilence(row);
  }

  async expireSilence(caller: AreaActor, id: string): Promise<Silence> {
    // The areas are looked up before the transaction (the agent's area reads outside it).
    const found = await this.store.silences.get(id);
    const areas = found ? await this.silenceAreas(found) : [];
    const row = await this.audit.run(
      caller,
      { action: 'silence.expire', targetType: 'silence', targetId: id },
      async (tx, spec) => {
        const cur = await tx.silences.get(id);
        if (!cur) throw new NotFoundError(`silence ${id} not found`);
        requireInAreas(caller, areas, 'operator', 'ending this silence');
        const r = (await tx.silences.expire(id)) ?? cur;
        spec.changes = changesBetween(toSilence(cur), toSilence(r), ['id', 'created_at']);
        return r;
      },
    );
    return toSilence(row);
  }
}
