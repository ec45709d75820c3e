/**
 * Distributor: hands desired states to agents through the controller each is connected to. For
 * every controller involved it first makes sure the controller holds each artifact named (one
 * copy per controller, resumable — platform's ensureArtifact — read chunk by chunk from the
 * database), then pushes the desired states in one call per controller. Agents never need a
 * route to the server: their controller relays.
 */
import { ensureArtifact, type ControllerClientPool, type PooledController } from '@opsplane/platform';
import type { ArtifactRef, DesiredState, DistributionStatus } from '@opsplane/models';
import type { Logger } from '@opsplane/kit';
import type { Store } from '../storage/store.js';

export interface PushItem {
  agent_code: string;
  area: string;
  /** The controller the agent is connected to (the fleet view's). */
  controller_id: string;
  desired: DesiredState;
}

export interface PushOutcome {
  success: boolean;
  error?: { code: string; message: string };
  status?: DistributionStatus;
}

export interface DistributorOptions {
  store: Store;
  pools: ControllerClientPool;
  logger: Logger;
  /** One push call (controller.api_timeout). */
  callTimeoutMs: number;
}

const PUSH_CHUNK = 500;
const HELD_TTL_MS = 60_000;

export class Distributor {
  /**
   * `controllerKey/sha256` → when the controller last said it holds it complete. Asked again
   * after HELD_TTL_MS (a HEAD), as a restarted controller may have lost its cache.
   */
  private readonly held = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(private readonly o: DistributorOptions) {}

  /** Makes `pc` hold the artifact (once per controller, deduplicated across callers). */
  private ensure(pc: PooledController, ref: ArtifactRef): Promise<void> {
    const key = `${pc.key}/${ref.sha256}`;
    const at = this.held.get(key);
    if (at !== undefined && Date.now() - at < HELD_TTL_MS) return Promise.resolve();
    let p = this.inFlight.get(key);
    if (!p) {
      p = ensureArtifact(pc.client, ref, (offset) =>
        this.o.store.artifactContent.read(ref.sha256, offset, ref.size - 1),
      )
        .then(() => {
          this.held.set(key, Date.now());
        })
        .finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, p);
    }
    return p;
  }

  /** Forgets what a controller holds (it restarted, or lost its cache). */
  forget(controllerKey: string): void {
    for (const k of this.held.keys()) if (k.startsWith(`${controllerKey}/`)) this.held.delete(k);
  }

  async push(items: readonly PushItem[]): Promise<Map<string, PushOutcome>> {
    const out = new Map<string, PushOutcome>();
    const byController = new Map<string, { pc: PooledController | undefined; items: PushItem[] }>();
    for (const it of items) {
      const key = `${it.area}/${it.controller_id}`;
      let g = byController.get(key);
      if (!g) {
        const pc = this.o.pools.onlineControllers(it.area).find((c) => c.controller.id === it.controller_id);
        g = { pc, items: [] };
        byController.set(key, g);
      }
      g.items.push(it);
    }
    await Promise.all(
      [...byController.entries()].map(async ([key, g]) => {
        const fail = (code: string, message: string) => {
          for (const it of g.items) out.set(it.agent_code, { success: false, error: { code, message } });
        };
        if (!g.pc) {
          fail('controller_unavailable', `controller ${key} is not online`);
          return;
        }
        const pc = g.pc;
        const refs = new Map<string, ArtifactRef>();
        for (const it of g.items) {
          for (const p of it.desired.packages) refs.set(p.artifact.sha256, p.artifact);
          if (it.desired.agent) refs.set(it.desired.agent.artifact.sha256, it.desired.agent.artifact);
        }
        try {
          for (const ref of refs.values()) await this.ensure(pc, ref);
        } catch (err) {
          const e = err as { code?: string; message?: string };
          this.o.logger.warn({ controller: key, err: e.message }, 'artifact relay to controller failed');
          fail(
            e.code ?? 'artifact_upload_failed',
            `relaying artifacts to controller ${key}: ${e.message ?? err}`,
          );
          return;
        }
        for (let i = 0; i < g.items.length; i += PUSH_CHUNK) {
          const chunk = g.items.slice(i, i + PUSH_CHUNK);
          try {
            const res = await pc.client.pushDesiredState(
              { items: chunk.map((it) => ({ agent_code: it.agent_code, desired: it.desired })) },
              AbortSignal.timeout(this.o.callTimeoutMs),
            );
            for (const r of res.results)
              out.set(r.agent_code, {
                success: r.success,
                ...(r.error ? { error: r.error } : {}),
                ...(r.status ? { status: r.status } : {}),
              });
          } catch (err) {
            const e = err as { code?: string; message?: string };
            for (const it of chunk)
              out.set(it.agent_code, {
                success: false,
                error: { code: e.code ?? 'upstream_error', message: e.message ?? String(err) },
              });
          }
        }
      }),
    );
    return out;
  }
}
