/**
 * An in-process ControllerSource: a map of controllers plus the two subscriptions. It is a data
 * source for pool tests (like a static controller list), not a stand-in for etcd; the real
 * ControllerDiscovery on etcd is exercised in pool-discovery.test.ts.
 */
import type { Controller } from '@opsplane/models';
import type { ControllerSource } from '../../src/index.js';

export function makeController(
  area: string,
  id: string,
  address: string,
  overrides: Partial<Controller> = {},
): Controller {
  return {
    id,
    area,
    address,
    start_time: '2024-01-15T10:00:00Z',
    version: '1.0.0',
    last_heartbeat: '2024-01-15T10:30:00Z',
    agent_count: 0,
    metadata: {},
    status: 'online',
    ...overrides,
  };
}

export class MemorySource implements ControllerSource {
  private readonly controllers = new Map<string, Controller>();
  private readonly updateCbs = new Set<(c: Controller) => void>();
  private readonly deleteCbs = new Set<(key: string) => void>();

  get listeners(): number {
    return this.updateCbs.size + this.deleteCbs.size;
  }

  put(c: Controller): void {
    this.controllers.set(`${c.area}/${c.id}`, c);
    for (const cb of this.updateCbs) cb(c);
  }

  delete(area: string, id: string): void {
    const key = `${area}/${id}`;
    if (this.controllers.delete(key)) for (const cb of this.deleteCbs) cb(key);
  }

  listControllers(): Controller[] {
    return [...this.controllers.values()];
  }

  listControllersByArea(area: string): Controller[] {
    return this.listControllers().filter((c) => c.area === area);
  }

  onControllerUpdate(cb: (c: Controller) => void): () => void {
    this.updateCbs.add(cb);
    return () => this.updateCbs.delete(cb);
  }

  onControllerDelete(cb: (key: string) => void): () => void {
    this.deleteCbs.add(cb);
    return () => this.deleteCbs.delete(cb);
  }
}
