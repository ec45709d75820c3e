/**
 * `opsplane ca init|issue` — the built-in certificate authority (@opsplane/pki).
 *
 *   opsplane ca init --dir /etc/opsplane/ca            # ca.key (0600), ca.crt, ca-bundle.crt
 *   opsplane ca init --dir … --rotate                  # new CA; the old one stays trusted in the bundle
 *   opsplane ca issue server --name platform --san platform.example.com --dir … --out /etc/opsplane/tls
 *   opsplane ca issue controller --name ctrl-1a --area area-1 --san 10.0.0.5 --out …
 *   opsplane ca issue agent --name <agent code> --area area-1 --out …
 */
import { certInfo, initCa, isCertKind, issueToFiles } from '@opsplane/pki';
import { EXIT, UsageError, defineCommand } from '../command.js';

export default defineCommand({
  name: 'ca',
  summary: 'Create the built-in certificate authority, or issue a certificate from it.',
  positionals: '<init | issue server|controller|agent|client>',
  options: {
    dir: {
      type: 'string',
      value: '<dir>',
      description: 'the CA directory (default $OPSPLANE_CA_DIR or ./ca)',
    },
    force: {
      type: 'boolean',
      description: 'init: replace an existing CA (what it issued stops being trusted)',
    },
    rotate: {
      type: 'boolean',
      description: 'init: new CA key and certificate; the old certificate stays in ca-bundle.crt meanwhile',
    },
    name: {
      type: 'string',
      value: '<name>',
      description: 'issue: agent code, controller id, server or client name',
    },
    area: { type: 'string', value: '<area>', description: 'issue: the area of an agent or controller' },
    san: {
      type: 'string',
      multiple: true,
      value: '<dns|ip>',
      description:
        'issue: a DNS name or IP address the server/controller is reached at (repeatable; default localhost, 127.0.0.1, ::1)',
    },
    days: {
      type: 'string',
      value: '<n>',
      description: 'lifetime (default: server/controller 90, agent 30, CA 3650)',
    },
    out: {
      type: 'string',
      value: '<dir>',
      description:
        'issue: where <name>.crt, <name>.key (0600) and ca.crt go (default: the current directory)',
    },
  },
  details: [
    'All keys are ECDSA P-256. The CA key never leaves --dir: the platform server (server.pki.ca_dir)',
    'issues agent certificates at deployment and renews agent and controller certificates through etcd.',
  ].join('\n'),
  async run(v, io) {
    const [action, kind, ...rest] = v._;
    const dir = v.dir ?? process.env.OPSPLANE_CA_DIR ?? 'ca';
    const days = v.days !== undefined ? Number(v.days) : undefined;
    if (days !== undefined && (!Number.isInteger(days) || days < 1))
      throw new UsageError('--days must be a positive integer', 'ca');
    if (action === 'init') {
      if (kind !== undefined) throw new UsageError(`unexpected argument '${kind}'`, 'ca');
      const r = await initCa(dir, { force: !!v.force, rotate: !!v.rotate, ...(days ? { days } : {}) });
      if (!r.created) {
        io.out(`a CA exists already in ${dir} (kept; --rotate to rotate it, --force to replace it)`);
        return EXIT.ok;
      }
      const info = certInfo(await import('node:fs/promises').then((f) => f.readFile(r.certPath, 'utf8')));
      io.out(
        `${r.rotated ? 'rotated the' : 'created a'} CA in ${dir}: ${r.keyPath} (0600), ${r.certPath}, ${r.bundlePath}`,
      );
      io.out(`  ${info.subject.replace(/\n/g, ', ')}; valid until ${info.notAfter.toISOString()}`);
      if (r.rotated)
        io.out(
          '  the previous CA stays trusted in ca-bundle.crt: distribute the bundle, renew, then run init --rotate again later to drop it',
        );
      return EXIT.ok;
    }
    if (action === 'issue') {
      if (!kind || !isCertKind(kind))
        throw new UsageError('issue what? server, controller, agent or client', 'ca');
      if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`, 'ca');
      if (!v.name) throw new UsageError('--name is required', 'ca');
      const needsArea = kind === 'agent' || kind === 'controller';
      if (needsArea && !v.area)
        throw new UsageError(
          `--area is required for ${kind === 'agent' ? 'an' : 'a'} ${kind} certificate`,
          'ca',
        );
      const area = needsArea ? (v.area ?? '') : '';
      let r;
      try {
        r = await issueToFiles(dir, v.out ?? '.', v.name, {
          kind,
          name: v.name,
          area,
          ...(v.san?.length ? { sans: v.san } : {}),
          ...(days ? { days } : {}),
        });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT')
          throw new UsageError(`no CA in ${dir}: run 'opsplane ca init --dir ${dir}' first`, 'ca');
        if (e instanceof RangeError) throw new UsageError(e.message, 'ca');
        throw e;
      }
      io.out(
        `issued a ${kind} certificate for ${v.name}${area ? ` (area ${area})` : ''}, serial ${r.issued.serial}, valid until ${r.issued.notAfter.toISOString()}`,
      );
      io.out(`  ${r.certPath}\n  ${r.keyPath} (0600)\n  ${r.caPath} (the CA bundle to trust)`);
      return EXIT.ok;
    }
    throw new UsageError(action ? `unknown action '${action}' (init or issue)` : 'init or issue?', 'ca');
  },
});
