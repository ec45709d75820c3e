/**
 * From a Windows InstallTarget to a connected WindowsInstaller over WinRM (options from the
 * target's `winrm`, defaults by port). Note: no Windows host runs in this project's tests; the
 * protocol layer is tested against a recorded-exchange fake (test/support/winrm-fake.ts).
 */
import type { Logger } from '@opsplane/kit';
import { ValidationError } from '@opsplane/models';
import type { HostInstaller } from '../host-installer.js';
import type { InstallTarget } from '../install-target.js';
import { WindowsInstaller } from './windows-installer.js';
import { WinRmSession } from './winrm-session.js';

export async function connectWindowsInstaller(t: InstallTarget, logger: Logger): Promise<HostInstaller> {
  const password = t.secrets.password;
  if (password === undefined) {
    throw new ValidationError(`device ${t.name}: WinRM needs a password login`);
  }
  const w = t.winrm ?? { https: t.port === 5986, auth: 'ntlm', allowUnencrypted: false };
  const session = await WinRmSession.connect({
    host: t.address,
    port: t.port,
    https: w.https,
    username: t.username,
    password,
    auth: w.auth,
    allowUnencrypted: w.allowUnencrypted,
    timeoutMs: t.connectTimeoutMs * 2,
    ...(w.certSha256 ? { tls: { fingerprint256: w.certSha256 } } : {}),
    logger,
  });
  return new WindowsInstaller(session, {
    ...(t.install.installDir !== undefined ? { installDir: t.install.installDir } : {}),
    logger,
  });
}
