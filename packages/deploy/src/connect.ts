/**
 * From a device record to a connected HostInstaller: decrypts the login secrets (only here),
 * applies the host key policy (DB-recorded fingerprints), an optional jump host (another device,
 * named in the `jump_host` metadata, whose own credentials are used), and the install options a
 * device's metadata may set:
 *   install_scope  system (default: root or sudo, /opt/opsplane/agent) | user (no root, ~/.opsplane/agent)
 *   install_dir    absolute install root
 *   node_path      Node.js executable on the device
 *   jump_host      name of the device to reach this one through (SSH)
 */
import type { Logger } from 'pino';
import { ValidationError } from '@opsplane/models';
import type { Device } from '../api/schemas/devices.js';
import type { Store } from '../db/store.js';
import type { LoginSecrets } from '../db/devices-repo.js';
import type { HostInstaller } from './host-installer.js';
import { checkInstallDir, LinuxInstaller, type InstallScope } from './linux-installer.js';
import { DeviceNotFoundError, UnsupportedPlatformError } from './deploy-errors.js';
import { SshSession, type SshTarget } from './ssh/ssh-session.js';
import { connectWindowsInstaller } from './winrm/connect.js';
import { checkWindowsInstallDir } from './winrm/windows-installer.js';

export interface InstallOptions {
  scope: InstallScope;
  installDir?: string;
  nodePath?: string;
  jumpHost?: string;
}

/** The device's install options from its metadata; ValidationError (400) when malformed. */
export function installOptionsOf(device: Device): InstallOptions {
  const m = device.metadata;
  const scope = m.install_scope ?? 'system';
  if (scope !== 'system' && scope !== 'user') {
    throw new ValidationError(
      `device ${device.name}: install_scope must be 'system' or 'user', not '${scope}'`,
    );
  }
  const out: InstallOptions = { scope };
  if (device.os === 'windows' && m.install_dir !== undefined) {
    try {
      out.installDir = checkWindowsInstallDir(m.install_dir);
    } catch (e) {
      throw new ValidationError(`device ${device.name}: ${(e as Error).message}`);
    }
  }
  if (m.install_dir !== undefined && device.os === 'linux') {
    try {
      out.installDir = checkInstallDir(m.install_dir);
    } catch (e) {
      throw new ValidationError(`device ${device.name}: ${(e as Error).message}`);
    }
  }
  if (m.node_path !== undefined) {
    if (!/^\/[A-Za-z0-9._/-]+$/.test(m.node_path) || m.node_path.includes('..')) {
      throw new ValidationError(`device ${device.name}: node_path must be an absolute plain path`);
    }
    out.nodePath = m.node_path;
  }
  if (m.jump_host !== undefined) out.jumpHost = m.jump_host;
  return out;
}

function sshTarget(s: LoginSecrets, connectTimeoutMs: number): SshTarget {
  return {
    host: s.host,
    port: s.port,
    username: s.username,
    connectTimeoutMs,
    ...(s.password !== undefined ? { password: s.password } : {}),
    ...(s.private_key !== undefined ? { privateKey: s.private_key } : {}),
    ...(s.passphrase !== undefined ? { passphrase: s.passphrase } : {}),
  };
}

export interface ConnectOptions {
  store: Store;
  acceptChangedHostKey: boolean;
  logger: Logger;
  connectTimeoutMs: number;
}

export async function connectInstaller(device: Device, o: ConnectOptions): Promise<HostInstaller> {
  const opts = installOptionsOf(device);
  const secrets = await o.store.devices.loginSecrets(device.id);
  if (device.login_method === 'winrm') {
    // Windows devices: see deploy/winrm (WindowsInstaller over WinRmSession).
    // Windows devices: WindowsInstaller over WinRM (tested against a recorded-exchange fake only).
    return connectWindowsInstaller(device, secrets, {
      connectTimeoutMs: o.connectTimeoutMs,
      logger: o.logger,
    });
  }
  if (device.os !== 'linux') {
    throw new UnsupportedPlatformError(
      `device ${device.name}: SSH deployment is for Linux devices (os is ${device.os})`,
    );
  }
  let jump: SshTarget | undefined;
  if (opts.jumpHost !== undefined) {
    const j = await o.store.devices.getByName(opts.jumpHost);
    if (!j)
      throw new DeviceNotFoundError(`jump host device '${opts.jumpHost}' of ${device.name} does not exist`);
    jump = sshTarget(await o.store.devices.loginSecrets(j.id), o.connectTimeoutMs);
  }
  const session = await SshSession.connect({
    ...sshTarget(secrets, o.connectTimeoutMs),
    hostKeys: o.store.hostKeys,
    acceptChangedKey: o.acceptChangedHostKey,
    logger: o.logger,
    ...(jump ? { jump } : {}),
  });
  return new LinuxInstaller(session, {
    scope: opts.scope,
    ...(opts.installDir !== undefined ? { installDir: opts.installDir } : {}),
    ...(opts.nodePath !== undefined ? { nodePath: opts.nodePath } : {}),
  });
}
