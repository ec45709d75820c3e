/**
 * What the engine is given to reach a device and install on it: an InstallTarget, plain data the
 * caller reads once (the server adapts a device record, its decrypted login secrets and its jump
 * host). The engine never looks anything up.
 *
 * Also the reading of the device metadata keys that set install and WinRM options, as pure
 * functions of (os, metadata), so that a caller can refuse bad metadata up front (a 400) rather
 * than as a failed deployment:
 *   install_scope  system (default: root or sudo, /opt/opsplane/agent) | user (no root, ~/.opsplane/agent)
 *   install_dir    absolute install root (Linux or Windows syntax, by os)
 *   node_path      Node.js executable on the device
 *   winrm_https    true (default when the login port is 5986) | false
 *   winrm_auth     ntlm (default) | basic
 *   winrm_cert_sha256        pin of a self-signed certificate (hex)
 *   winrm_allow_unencrypted  true to allow plain HTTP (the password then crosses in clear for basic)
 * (`jump_host`, the name of another device, is the caller's to resolve into `jumpHost`.)
 */
import { ValidationError } from '@opsplane/models';
import { checkInstallDir, type InstallScope } from './linux/linux-installer.js';
import { checkWindowsInstallDir } from './winrm/windows-installer.js';

/** Login secrets, decrypted: they go to ssh2 / the WinRM client only, never into messages or logs. */
export interface TargetSecrets {
  password?: string;
  /** OpenSSH / PEM private key text. */
  privateKey?: string;
  passphrase?: string;
}

/** Where and as whom to log in. */
export interface LoginTarget {
  /** For messages: the device's name. */
  name: string;
  address: string;
  port: number;
  username: string;
  secrets: TargetSecrets;
  /** TCP connect + handshake + authentication (WinRM: twice this per HTTP exchange). */
  connectTimeoutMs: number;
  /**
   * Under which key its SSH host key is pinned in the HostKeyStore — e.g. the device's id, so
   * that trust belongs to the device and not to whatever answers at an address. Default
   * `host:port`.
   */
  hostKeyId?: string;
}

export interface InstallOptions {
  scope: InstallScope;
  installDir?: string;
  nodePath?: string;
}

/** How to speak WinRM to a Windows device (see the module comment for the metadata keys). */
export interface WinRmTargetOptions {
  https: boolean;
  auth: 'ntlm' | 'basic';
  allowUnencrypted: boolean;
  /** SHA-256 fingerprint of the device's certificate: a self-signed one is accepted if it matches. */
  certSha256?: string;
}

export interface InstallTarget extends LoginTarget {
  transport: 'ssh' | 'winrm';
  /** The device's OS as registered: SSH deploys to `linux`, WinRM to `windows`. */
  os: string;
  install: InstallOptions;
  /** SSH only: reach the device through this host, logging in there with its own credentials. */
  jumpHost?: LoginTarget;
  /** WinRM only; default from the port (https on 5986), NTLM, encrypted. */
  winrm?: WinRmTargetOptions;
}

/** The device's install options from its metadata; ValidationError (400) when malformed. */
export function installOptionsOf(
  os: string,
  m: Readonly<Record<string, string>>,
  name: string,
): InstallOptions {
  const scope = m.install_scope ?? 'system';
  if (scope !== 'system' && scope !== 'user') {
    throw new ValidationError(`device ${name}: install_scope must be 'system' or 'user', not '${scope}'`);
  }
  const out: InstallOptions = { scope };
  if (m.install_dir !== undefined && (os === 'windows' || os === 'linux')) {
    try {
      out.installDir =
        os === 'windows' ? checkWindowsInstallDir(m.install_dir) : checkInstallDir(m.install_dir);
    } catch (e) {
      throw new ValidationError(`device ${name}: ${(e as Error).message}`);
    }
  }
  if (m.node_path !== undefined) {
    if (!/^\/[A-Za-z0-9._/-]+$/.test(m.node_path) || m.node_path.includes('..')) {
      throw new ValidationError(`device ${name}: node_path must be an absolute plain path`);
    }
    out.nodePath = m.node_path;
  }
  return out;
}

const flag = (v: string | undefined, key: string, name: string): boolean | undefined => {
  if (v === undefined) return undefined;
  if (v === 'true' || v === 'false') return v === 'true';
  throw new ValidationError(`device ${name}: ${key} must be true or false`);
};

/** The WinRM options from a Windows device's metadata and login port; ValidationError when malformed. */
export function winrmOptionsOf(
  m: Readonly<Record<string, string>>,
  port: number,
  name: string,
): WinRmTargetOptions {
  const auth = m.winrm_auth ?? 'ntlm';
  if (auth !== 'ntlm' && auth !== 'basic') {
    throw new ValidationError(`device ${name}: winrm_auth must be ntlm or basic`);
  }
  return {
    https: flag(m.winrm_https, 'winrm_https', name) ?? port === 5986,
    auth,
    allowUnencrypted: flag(m.winrm_allow_unencrypted, 'winrm_allow_unencrypted', name) ?? false,
    ...(m.winrm_cert_sha256 ? { certSha256: m.winrm_cert_sha256 } : {}),
  };
}
