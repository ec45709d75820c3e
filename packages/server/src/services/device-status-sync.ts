/**
 * Keeps each device's status and agent_version in step with what the controllers report. After
 * every build of the agent view: a device whose agent is listed online becomes `online` (with the
 * version the agent reports), one whose agent is listed offline goes from `online` to `offline`.
 * What is not known is left alone — a device whose agent no controller lists, an area whose
 * controllers could not be asked, discovery not synced — as are devices being deployed (their
 * deployment sets the outcome). Each change is a compare-and-set on the status read, so a
 * deployment that starts meanwhile is never overwritten.
 */
import type { Logger } from 'pino';
import type { DeviceStatus } from '@opsplane/api';
import type { Store } from '../storage/store.js';
import { SerialTask } from '@opsplane/kit';
import type { PlatformServices } from './platform.js';

export class DeviceStatusSync {
  #off: (() => void) | undefined;
  readonly #pass = new SerialTask<number>(() => this.run());
  #stopped = false;

  constructor(
    private readonly o: {
      store: Store;
      platform: PlatformServices;
      logger: Logger;
      /** Runs each status change in a transaction (fenced by the cluster leadership in the server). */
      write?: <T>(fn: (tx: Store) => Promise<T>) => Promise<T>;
    },
  ) {}

  /** Starts following the agent view (again, after a stop). */
  start(): void {
    this.#stopped = false;
    this.#off = this.o.platform.view.onRefresh(() => this.kick());
    this.kick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#off?.();
    await this.#pass.idle();
  }

  /** Runs a pass now, or once more after the one running. */
  kick(): void {
    if (this.#stopped) return;
    this.#pass.run().catch((err: unknown) => this.o.logger.warn({ err }, 'device status sync failed'));
  }

  /** One pass; returns how many devices changed. */
  async run(): Promise<number> {
    const { view } = this.o.platform;
    const snap = view.snapshot();
    if (!this.o.platform.discoveryState().synced || view.lastRefresh === undefined) return 0;
    const unsure = new Set(snap.errors.map((e) => e.area).filter(Boolean));
    const devices = await this.o.store.devices.statusDirectory();
    let changed = 0;
    for (const a of view.current.all()) {
      const d = devices.get(a.agent_code);
      if (!d || d.status === 'deploying' || unsure.has(a.area) || a.status === 'unknown') continue;
      let want: DeviceStatus | undefined;
      if (a.status === 'online') want = 'online';
      else if (a.status === 'offline' && d.status === 'online') want = 'offline';
      const version = a.status === 'online' && a.version ? a.version : d.agentVersion;
      if (!want || (want === d.status && version === d.agentVersion)) continue;
      const write = this.o.write ?? ((fn) => fn(this.o.store));
      if (await write((tx) => tx.devices.setStatusIf(d.id, d.status as DeviceStatus, want, version))) {
        changed++;
        this.o.logger.info(
          { device: d.name, from: d.status, to: want, agent_version: version },
          'device status follows its agent',
        );
      }
    }
    return changed;
  }
}
