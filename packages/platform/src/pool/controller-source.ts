/**
 * What the client pool needs from discovery. ControllerDiscovery satisfies it structurally;
 * anything else that knows the controllers (a static list, a test) can too.
 */
import type { Controller } from '@opsplane/models';

export interface ControllerSource {
  listControllers(): Controller[];
  listControllersByArea(area: string): Controller[];
  /** Subscribes to added or changed controllers; returns the unsubscribe function. */
  onControllerUpdate(cb: (c: Controller) => void): () => void;
  /** Subscribes to removed controllers (cb gets the key `area/id`); returns the unsubscribe function. */
  onControllerDelete(cb: (key: string) => void): () => void;
}
