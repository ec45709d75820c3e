/**
 * Alerts as the API serves them: the list (filter by status, kind, area; newest first), one
 * alert, and acknowledging one (audited). The alert engine raises and resolves them; an
 * acknowledgement records who is on it and changes nothing else (no notification). Also the one
 * place alert rows become the API's Alert.
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
} from '@opsplane/api';
import type { AlertRow } from '../storage/schema.js';
import type { Store } from '../storage/store.js';
import type { Actor, AuditTrail } from './audit-trail.js';

export function toAlert(r: AlertRow): Alert {
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
  };
}

export class AlertService {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditTrail,
  ) {}

  async list(q: AlertListQuery): Promise<AlertListResponse> {
    const { items, total } = await this.store.alerts.list(q);
    return { items: items.map(toAlert), total, page: q.page, pageSize: q.pageSize };
  }

  async get(id: string): Promise<Alert> {
    const a = await this.store.alerts.get(id);
    if (!a) throw new NotFoundError(`alert ${id} not found`);
    return toAlert(a);
  }

  async acknowledge(actor: Actor, id: string): Promise<Alert> {
    const row = await this.audit.run(
      actor,
      { action: 'alert.ack', targetType: 'alert', targetId: id },
      async (tx, spec) => {
        const a = await tx.alerts.get(id);
        if (!a) throw new NotFoundError(`alert ${id} not found`);
        if (a.status !== 'firing')
          throw new ConflictError(`alert ${id} is resolved already; nothing to acknowledge`);
        spec.details = { kind: a.kind, subject: a.subject };
        return (await tx.alerts.acknowledge(id, actor.username)) ?? a;
      },
    );
    return toAlert(row);
  }
}
