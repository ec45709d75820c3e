/**
 * One SSH session to a device (ssh2, pure JS): password or key (+ passphrase) auth, the host key
 * policy (host-key-policy.ts), an optional jump host, commands given as argv arrays and quoted for
 * the remote POSIX shell, `sudo -n` when the login user is not root, SFTP upload verified with
 * the remote `sha256sum`, and OS/arch detection. Secrets are passed to ssh2 only: they never
 * appear in errors or log lines.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { Client, type ClientChannel, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { createLogger, type Logger } from '@opsplane/kit';
import { checkHostKey, hostKeyFingerprint, hostPortKey, type HostKeyStore } from './host-key-policy.js';
import {
  SshAuthError,
  SshChecksumError,
  SshCommandError,
  SshHostKeyChangedError,
  SshSudoError,
  SshUnreachableError,
} from './ssh-errors.js';
import { UNREACHABLE_NET_CODES } from '../deploy-errors.js';

export interface SshTarget {
  host: string;
  /** Default 22. */
  port?: number;
  username: string;
  password?: string;
  /** OpenSSH / PEM private key text. */
  privateKey?: string | Buffer;
  passphrase?: string;
  /** Default 10 000 ms: TCP connect + handshake + authentication. */
  connectTimeoutMs?: number;
  /** The HostKeyStore key of this target's pin (e.g. a device id). Default `host:port`. */
  hostKeyId?: string;
}

export interface SshConnectOptions extends SshTarget {
  hostKeys: HostKeyStore;
  /** The operator accepted a changed host key: connect and re-record it (this host and the jump host). */
  acceptChangedKey?: boolean;
  /** Reach the target through this host (its key is checked by the same policy). */
  jump?: SshTarget;
  logger?: Logger;
}

export interface ExecOptions {
  /** Run through `sudo -n --` when the login user is not root. */
  sudo?: boolean;
  stdin?: string | Buffer;
  /** Default: no timeout. */
  timeoutMs?: number;
  /** Throw SshCommandError on a non-zero exit. Default false. */
  check?: boolean;
}

export interface ExecResult {
  /** Exit code; null when killed by a signal. */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface UploadOptions {
  /** File mode, e.g. 0o755. Default 0o644. */
  mode?: number;
}

export interface UploadResult {
  remotePath: string;
  sha256: string;
  bytes: number;
}

export interface DetectResult {
  os: 'linux' | string;
  arch: 'amd64' | 'arm64' | string;
  hasSystemd: boolean;
  isRoot: boolean;
}

/** Quotes one argument for a POSIX shell: always single-quoted, `'` as `'\''`. */
export function shellQuote(arg: string): string {
  if (arg.includes('\0')) throw new TypeError('shell argument contains a NUL byte');
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** An argv array as one safely quoted POSIX shell command line. */
export function shellCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new TypeError('empty command');
  return argv.map(shellQuote).join(' ');
}

/** uname -m → the platform's arch names (amd64, arm64), else the raw value. */
export function normalizeArch(machine: string): string {
  const m = machine.trim();
  if (m === 'x86_64' || m === 'amd64') return 'amd64';
  if (m === 'aarch64' || m === 'arm64' || m === 'armv8l') return 'arm64';
  return m;
}

interface Connected {
  client: Client;
}

/** Connects one ssh2 Client (optionally over `sock`), applying the host key policy. */
function connectClient(
  target: SshTarget,
  hostKeys: HostKeyStore,
  acceptChangedKey: boolean,
  log: Logger,
  sock?: Readable,
): Promise<Connected> {
  const port = target.port ?? 22;
  const hostPort = hostPortKey(target.host, port);
  const pinKey = target.hostKeyId ?? hostPort;
  const timeoutMs = target.connectTimeoutMs ?? 10_000;
  return new Promise<Connected>((resolve, reject) => {
    const client = new Client();
    let hostKeyError: unknown;
    let settled = false;
    const finish = (err: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err === undefined) {
        resolve({ client });
        return;
      }
      client.removeAllListeners('ready');
      client.on('error', () => undefined); // late errors of a dead client
      client.destroy();
      reject(err);
    };
    // Our own deadline too: ssh2's readyTimeout does not cover every stall (e.g. a slow verifier).
    const timer = setTimeout(
      () => finish(new SshUnreachableError(hostPort, `no SSH session within ${timeoutMs} ms`)),
      timeoutMs + 1000,
    );
    client.once('ready', () => finish(undefined));
    client.on('error', (e: Error & { level?: string; code?: string }) => {
      if (hostKeyError !== undefined) return finish(hostKeyError);
      if (e.level === 'client-authentication') {
        return finish(new SshAuthError(`${target.username}@${hostPort}`, undefined, e));
      }
      if (e.level === 'client-timeout') {
        return finish(new SshUnreachableError(hostPort, `no SSH handshake within ${timeoutMs} ms`, e));
      }
      if (e.code && UNREACHABLE_NET_CODES.has(e.code)) {
        return finish(new SshUnreachableError(hostPort, e.code, e));
      }
      if (/encrypted private key|passphrase|Cannot parse privateKey/i.test(e.message)) {
        // A wrong or missing passphrase: the message names no secret.
        return finish(
          new SshAuthError(`${target.username}@${hostPort}`, `SSH key rejected: ${e.message}`, e),
        );
      }
      finish(new SshUnreachableError(hostPort, e.message, e));
    });
    client.on('close', () => {
      if (!settled) finish(hostKeyError ?? new SshUnreachableError(hostPort, 'connection closed'));
    });
    const config: ConnectConfig = {
      host: target.host,
      port,
      username: target.username,
      readyTimeout: timeoutMs,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
        const presented = hostKeyFingerprint(key);
        checkHostKey(hostKeys, pinKey, presented, acceptChangedKey, hostPort).then(
          (decision) => {
            if (decision !== 'matched')
              log.info({ hostPort, pin: pinKey, fingerprint: presented, decision }, 'ssh host key');
            verify(true);
          },
          (e: unknown) => {
            hostKeyError = e;
            if (e instanceof SshHostKeyChangedError) {
              log.warn(
                { hostPort, expected: e.expectedFingerprint, presented },
                'ssh host key changed: refused',
              );
            }
            verify(false);
          },
        );
      },
    };
    if (sock) config.sock = sock;
    if (target.password !== undefined) config.password = target.password;
    if (target.privateKey !== undefined) config.privateKey = target.privateKey;
    if (target.passphrase !== undefined) config.passphrase = target.passphrase;
    try {
      client.connect(config);
    } catch (e) {
      // ssh2 throws synchronously on an unparsable key / wrong passphrase.
      finish(
        new SshAuthError(`${target.username}@${hostPort}`, `SSH key rejected: ${(e as Error).message}`, e),
      );
    }
  });
}

export class SshSession {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly #client: Client;
  readonly #jump: Client | undefined;
  readonly #log: Logger;
  #uid: number | undefined;
  #closed = false;

  private constructor(opts: SshConnectOptions, client: Client, jump: Client | undefined, log: Logger) {
    this.host = opts.host;
    this.port = opts.port ?? 22;
    this.username = opts.username;
    this.#client = client;
    this.#jump = jump;
    this.#log = log;
  }

  /** `user@host:port` (no secrets). */
  get target(): string {
    return `${this.username}@${hostPortKey(this.host, this.port)}`;
  }

  static async connect(opts: SshConnectOptions): Promise<SshSession> {
    const port = opts.port ?? 22;
    const log = (opts.logger ?? createLogger('ssh')).child({
      target: `${opts.username}@${hostPortKey(opts.host, port)}`,
    });
    const accept = opts.acceptChangedKey ?? false;
    let jump: Client | undefined;
    let sock: Readable | undefined;
    if (opts.jump) {
      const j = opts.jump;
      jump = (await connectClient(j, opts.hostKeys, accept, log)).client;
      try {
        sock = await new Promise<ClientChannel>((resolve, reject) => {
          const timer = setTimeout(
            () =>
              reject(new SshUnreachableError(hostPortKey(opts.host, port), 'jump host forward timed out')),
            opts.connectTimeoutMs ?? 10_000,
          );
          jump!.forwardOut('127.0.0.1', 0, opts.host, port, (err, stream) => {
            clearTimeout(timer);
            if (err) {
              reject(
                new SshUnreachableError(
                  hostPortKey(opts.host, port),
                  `via jump host ${hostPortKey(j.host, j.port ?? 22)}: ${err.message}`,
                  err,
                ),
              );
            } else resolve(stream);
          });
        });
      } catch (e) {
        jump.end();
        throw e;
      }
    }
    try {
      const { client } = await connectClient(opts, opts.hostKeys, accept, log, sock);
      log.debug(
        { jump: opts.jump ? hostPortKey(opts.jump.host, opts.jump.port ?? 22) : undefined },
        'ssh connected',
      );
      return new SshSession(opts, client, jump, log);
    } catch (e) {
      jump?.end();
      throw e;
    }
  }

  /**
   * Runs `command` (argv, each element quoted) on the device. Resolves with the exit code and
   * output whatever the exit code unless `check`. `sudo: true` prefixes `sudo -n --` when the
   * login user is not root; a refused sudo throws SshSudoError.
   */
  async exec(command: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    let argv = [...command];
    const viaSudo = opts.sudo === true && !(await this.isRoot());
    if (viaSudo) argv = ['sudo', '-n', '--', ...argv];
    const line = shellCommand(argv);
    const res = await this.#run(line, opts.stdin, opts.timeoutMs, command[0] ?? '');
    if (viaSudo && res.code !== 0 && isSudoRefusal(res)) throw new SshSudoError(this.username, res.stderr);
    if (opts.check && res.code !== 0) throw new SshCommandError(describe(command), res.code, res.stderr);
    return res;
  }

  #run(
    line: string,
    stdin: string | Buffer | undefined,
    timeoutMs: number | undefined,
    name: string,
  ): Promise<ExecResult> {
    this.#assertOpen();
    return new Promise<ExecResult>((resolve, reject) => {
      this.#client.exec(line, (err, stream) => {
        if (err) return reject(new SshCommandError(`'${name}'`, null, '', `could not start: ${err.message}`));
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        let code: number | null = null;
        let timedOut = false;
        const timer =
          timeoutMs !== undefined
            ? setTimeout(() => {
                // Best effort: ask sshd to kill it and close the channel, but do not wait for
                // the remote side (sshd lets a command outlive a closed channel).
                timedOut = true;
                stream.signal('KILL');
                stream.close();
                reject(
                  new SshCommandError(
                    `'${name}'`,
                    null,
                    Buffer.concat(errOut).toString('utf8'),
                    `timed out after ${timeoutMs} ms`,
                  ),
                );
              }, timeoutMs)
            : undefined;
        stream.on('data', (d: Buffer) => out.push(d));
        stream.stderr.on('data', (d: Buffer) => errOut.push(d));
        stream.on('exit', (c: number | null) => {
          code = typeof c === 'number' ? c : null;
        });
        stream.on('error', () => undefined);
        stream.on('close', () => {
          if (timer) clearTimeout(timer);
          const stderr = Buffer.concat(errOut).toString('utf8');
          if (timedOut) return; // already rejected
          resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr });
        });
        if (stdin !== undefined) stream.end(stdin);
        else stream.end();
      });
    });
  }

  /** Whether the login user is root (`id -u`, asked once). */
  async isRoot(): Promise<boolean> {
    if (this.#uid === undefined) {
      const res = await this.#run(shellCommand(['id', '-u']), undefined, 30_000, 'id');
      const uid = Number(res.stdout.trim());
      if (res.code !== 0 || !Number.isInteger(uid))
        throw new SshCommandError("'id -u'", res.code, res.stderr);
      this.#uid = uid;
    }
    return this.#uid === 0;
  }

  /**
   * Uploads a local file or a buffer over SFTP, sets its mode, then checks that the remote
   * `sha256sum` equals the local SHA-256 (SshChecksumError otherwise).
   */
  async upload(source: string | Buffer, remotePath: string, opts: UploadOptions = {}): Promise<UploadResult> {
    this.#assertOpen();
    const mode = opts.mode ?? 0o644;
    const { sha256, bytes } = typeof source === 'string' ? await hashFile(source) : hashBuffer(source);
    const sftp = await new Promise<SFTPWrapper>((resolve, reject) =>
      this.#client.sftp((e, s) =>
        e ? reject(new SshCommandError('sftp', null, '', `could not start: ${e.message}`)) : resolve(s),
      ),
    );
    try {
      await new Promise<void>((resolve, reject) => {
        const done = (e: Error | null | undefined) =>
          e
            ? reject(new SshCommandError(`upload to ${remotePath}`, null, '', `failed: ${e.message}`))
            : resolve();
        if (typeof source === 'string') sftp.fastPut(source, remotePath, { mode }, done);
        else sftp.writeFile(remotePath, source, { mode }, done);
      });
      // The mode given at open is subject to the remote umask: set it explicitly.
      await new Promise<void>((resolve, reject) =>
        sftp.chmod(remotePath, mode, (e) =>
          e
            ? reject(new SshCommandError(`chmod ${remotePath}`, null, '', `failed: ${e.message}`))
            : resolve(),
        ),
      );
    } finally {
      sftp.end();
    }
    const res = await this.exec(['sha256sum', '--', remotePath], { check: true, timeoutMs: 120_000 });
    const actual = res.stdout.trim().split(/\s+/)[0] ?? '';
    if (actual.replace(/^\\/, '') !== sha256) throw new SshChecksumError(remotePath, sha256, actual);
    this.#log.debug({ remotePath, bytes, sha256 }, 'ssh upload verified');
    return { remotePath, sha256, bytes };
  }

  /** OS, architecture (amd64/arm64/raw uname -m), systemd and whether the login user is root. */
  async detect(): Promise<DetectResult> {
    const script =
      'uname -s; uname -m; id -u; if [ -d /run/systemd/system ]; then echo systemd; else echo none; fi';
    const res = await this.exec(['sh', '-c', script], { check: true, timeoutMs: 30_000 });
    const [os = '', machine = '', uid = '', init = ''] = res.stdout.split('\n').map((l) => l.trim());
    this.#uid = Number(uid);
    return {
      os: os.toLowerCase(),
      arch: normalizeArch(machine),
      hasSystemd: init === 'systemd',
      isRoot: this.#uid === 0,
    };
  }

  /** Closes the session (and the jump host's). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.end();
    this.#jump?.end();
  }

  get closed(): boolean {
    return this.#closed;
  }

  #assertOpen(): void {
    if (this.#closed) throw new SshCommandError('ssh session', null, '', `to ${this.target} is closed`);
  }
}

function isSudoRefusal(res: ExecResult): boolean {
  return (
    /^(?:sudo: |.*sudo: (?:command )?not found)/m.test(res.stderr) ||
    (res.code === 127 && /sudo/.test(res.stderr))
  );
}

function describe(command: readonly string[]): string {
  const s = command.join(' ');
  return `'${s.length > 200 ? s.slice(0, 200) + '…' : s}'`;
}

function hashBuffer(b: Buffer): { sha256: string; bytes: number } {
  return { sha256: createHash('sha256').update(b).digest('hex'), bytes: b.length };
}

function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let bytes = 0;
    createReadStream(path)
      .on('data', (d) => {
        const b = d as Buffer;
        bytes += b.length;
        h.update(b);
      })
      .on('error', reject)
      .on('end', () => resolve({ sha256: h.digest('hex'), bytes }));
  });
}
