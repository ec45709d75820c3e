/**
 * From a Windows device record to a connected WindowsInstaller over WinRM. Device metadata:
 *   winrm_https            true (default when the login port is 5986) | false
 *   winrm_auth             ntlm (default) | basic
 *   winrm_cert_sha256      pin of a self-signed certificate (hex)
 *   winrm_allow_unencrypted  true to allow plain HTTP (the password then crosses in clear for basic)
 *   install_dir            Windows install root (default C:\Program Files\Opsplane\Agent)
 * Note: no Windows host runs in this project's tests; the protocol layer is tested against a
 * recorded-exchange fake (see the README's "Windows devices (WinRM)").
 */
import type { Logger } from 'pino';
import { ValidationError } from '@opsplane/models';
import type { Device } from '../../api/schemas/devices.js';
import type { LoginSecrets } from '../../db/devices-repo.js';
import type { HostInstaller } from '../host-installer.js';
import { WindowsInstaller } from './windows-installer.js';
import { WinRmSession } from './winrm-session.js';

const flag = (v: string | undefined, name: string, device: string): boolean | undefined => {
  if (v === undefined) return undefined;
  if (v === 'true' || v === 'false') return v === 'true';
  throw new ValidationError(`device ${device}: ${name} must be true or false`);
};

export async function connectWindowsInstaller(
  device: Device,
  secrets: LoginSecrets,
  o: { connectTimeoutMs: number; logger: Logger },
): Promise<HostInstaller> {
  const m = device.metadata;
  if (secrets.password === undefined) {
    throw new ValidationError(`device ${device.name}: WinRM needs a password login`);
  }
  const auth = m.winrm_auth ?? 'ntlm';
  if (auth !== 'ntlm' && auth !== 'basic') {
    throw new ValidationError(`device ${device.name}: winrm_auth must be ntlm or basic`);
  }
  const https = flag(m.winrm_https, 'winrm_https', device.name) ?? secrets.port === 5986;
  const allowUnencrypted = flag(m.winrm_allow_unencrypted, 'winrm_allow_unencrypted', device.name) ?? false;
  const session = await WinRmSession.connect({
    host: secrets.host,
    port: secrets.port,
    https,
    username: secrets.username,
    password: secrets.password,
    auth,
    allowUnencrypted,
    timeoutMs: o.connectTimeoutMs * 2,
    ...(m.winrm_cert_sha256 ? { tls: { fingerprint256: m.winrm_cert_sha256 } } : {}),
    logger: o.logger,
  });
  return new WindowsInstaller(session, {
    ...(m.install_dir !== undefined ? { installDir: m.install_dir } : {}),
    logger: o.logger,
  });
}
