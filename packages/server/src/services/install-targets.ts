/**
 * From a device to the install engine's InstallTarget — the one place that does it: reads the
 * device's decrypted login secrets (only here) and, for a `jump_host` in its metadata, that
 * device and its own secrets, once, and validates the metadata the engine reads (install and
 * WinRM options; ValidationError, 400, when malformed). SSH host keys are pinned per device
 * (`hostKeyId` = device:<id>, for the target and its jump host alike), never per address.
 */
import { OpsplaneError } from '@opsplane/models';
import {
  installOptionsOf,
  winrmOptionsOf,
  type InstallOptions,
  type InstallTarget,
  type LoginTarget,
} from '@opsplane/deploy';
import type { Device } from '@opsplane/api';
import { deviceHostKeyId, type LoginSecrets } from '../storage/devices-repo.js';
import type { Store } from '../storage/store.js';

/** A device named in a request (a deployment's device, a jump host) does not exist. */
export class DeviceNotFoundError extends OpsplaneError {
  constructor(message: string) {
    super('device_not_found', message, { status: 404 });
  }
}

/** The install options of a device's metadata: a request checks them before it queues anything. */
export function deviceInstallOptions(device: Device): InstallOptions {
  return installOptionsOf(device.os, device.metadata, device.name);
}

function loginTarget(
  device: { id: string; name: string },
  s: LoginSecrets,
  connectTimeoutMs: number,
): LoginTarget {
  return {
    name: device.name,
    address: s.host,
    port: s.port,
    username: s.username,
    connectTimeoutMs,
    hostKeyId: deviceHostKeyId(device.id),
    secrets: {
      ...(s.password !== undefined ? { password: s.password } : {}),
      ...(s.private_key !== undefined ? { privateKey: s.private_key } : {}),
      ...(s.passphrase !== undefined ? { passphrase: s.passphrase } : {}),
    },
  };
}

export async function installTargetOf(
  store: Store,
  device: Device,
  connectTimeoutMs: number,
): Promise<InstallTarget> {
  const install = deviceInstallOptions(device);
  const secrets = await store.devices.loginSecrets(device.id);
  const target: InstallTarget = {
    ...loginTarget(device, secrets, connectTimeoutMs),
    transport: device.login_method,
    os: device.os,
    install,
  };
  if (device.login_method === 'winrm') {
    target.winrm = winrmOptionsOf(device.metadata, secrets.port, device.name);
    return target;
  }
  const jumpName = device.metadata.jump_host;
  if (jumpName !== undefined) {
    const jump = await store.devices.getByName(jumpName);
    if (!jump)
      throw new DeviceNotFoundError(`jump host device '${jumpName}' of ${device.name} does not exist`);
    target.jumpHost = loginTarget(jump, await store.devices.loginSecrets(jump.id), connectTimeoutMs);
  }
  return target;
}
