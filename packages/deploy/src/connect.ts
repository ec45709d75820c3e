/**
 * From an InstallTarget to a connected HostInstaller: LinuxInstaller over an SshSession (host key
 * policy on the caller's HostKeyStore, optional jump host) or WindowsInstaller over WinRM. The
 * session is open when this resolves; the installer's close() ends it. Secrets go to the
 * transport only.
 */
import type { Logger } from '@opsplane/kit';
import { UnsupportedPlatformError } from './deploy-errors.js';
import type { HostInstaller } from './host-installer.js';
import type { InstallTarget, LoginTarget } from './install-target.js';
import { LinuxInstaller } from './linux/linux-installer.js';
import type { HostKeyStore } from './ssh/host-key-policy.js';
import { SshSession, type SshTarget } from './ssh/ssh-session.js';
import { connectWindowsInstaller } from './winrm/connect.js';

export interface ConnectOptions {
  /** Recorded SSH host key fingerprints (trust on first use). */
  hostKeys: HostKeyStore;
  /** The operator accepted a changed host key: connect and record the new one (target and jump host). */
  acceptChangedHostKey?: boolean;
  logger: Logger;
}

function sshTarget(t: LoginTarget): SshTarget {
  const s = t.secrets;
  return {
    host: t.address,
    port: t.port,
    username: t.username,
    connectTimeoutMs: t.connectTimeoutMs,
    ...(t.hostKeyId !== undefined ? { hostKeyId: t.hostKeyId } : {}),
    ...(s.password !== undefined ? { password: s.password } : {}),
    ...(s.privateKey !== undefined ? { privateKey: s.privateKey } : {}),
    ...(s.passphrase !== undefined ? { passphrase: s.passphrase } : {}),
  };
}

export async function connectInstaller(target: InstallTarget, o: ConnectOptions): Promise<HostInstaller> {
  // Windows devices: tested against a recorded-exchange fake only (no Windows host runs here).
  if (target.transport === 'winrm') return connectWindowsInstaller(target, o.logger);
  if (target.os !== 'linux') {
    throw new UnsupportedPlatformError(
      `device ${target.name}: SSH deployment is for Linux devices (os is ${target.os})`,
    );
  }
  const session = await SshSession.connect({
    ...sshTarget(target),
    hostKeys: o.hostKeys,
    acceptChangedKey: o.acceptChangedHostKey ?? false,
    logger: o.logger,
    ...(target.jumpHost ? { jump: sshTarget(target.jumpHost) } : {}),
  });
  return new LinuxInstaller(session, target.install);
}
