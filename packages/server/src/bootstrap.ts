/**
 * The first admin. When the users table is empty, create `admin` with OPSPLANE_ADMIN_PASSWORD,
 * or with a generated password that is printed once on stdout (never logged).
 */
import { ConflictError, ValidationError } from '@opsplane/models';
import type { Store } from './storage/store.js';
import { MIN_PASSWORD_LENGTH } from '@opsplane/api';
import { generatePassword, hashPassword } from './security/passwords.js';

export const FIRST_ADMIN = 'admin';

export interface BootstrapResult {
  created: boolean;
  username?: string;
  /** Only when generated: the caller prints it, once. */
  generatedPassword?: string;
}

export async function ensureFirstAdmin(
  store: Store,
  envPassword: string | undefined,
): Promise<BootstrapResult> {
  if ((await store.users.count()) > 0) return { created: false };
  if (envPassword !== undefined && envPassword.length < MIN_PASSWORD_LENGTH) {
    throw new ValidationError(`OPSPLANE_ADMIN_PASSWORD must be at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  const password = envPassword ?? generatePassword();
  const passwordHash = await hashPassword(password);
  try {
    await store.transaction(async (tx) => {
      // Re-check inside the transaction: another server may have bootstrapped meanwhile.
      if ((await tx.users.count()) > 0) throw new ConflictError('already bootstrapped');
      const u = await tx.users.create({ username: FIRST_ADMIN, role: 'admin', passwordHash });
      await tx.audit.record({
        actor: 'system',
        action: 'user.bootstrap',
        targetType: 'user',
        targetId: u.id,
        result: 'success',
        details: { username: FIRST_ADMIN, source: envPassword !== undefined ? 'env' : 'generated' },
      });
    });
  } catch (e) {
    if (e instanceof ConflictError) return { created: false };
    throw e;
  }
  return {
    created: true,
    username: FIRST_ADMIN,
    ...(envPassword === undefined ? { generatedPassword: password } : {}),
  };
}

/** Not a secret itself, but losing the file loses every stored credential: say where it is. */
export function masterKeyNotice(path: string): string {
  return `OPSPLANE: generated a new master key at ${path} — back it up; stored credentials cannot be decrypted without it.\n`;
}

export function firstAdminBanner(username: string, password: string): string {
  const line = '='.repeat(72);
  return [
    line,
    ' OPSPLANE FIRST ADMIN — shown only this once',
    `   username: ${username}`,
    `   password: ${password}`,
    ' Log in and change it (PUT /api/v1/users/me/password).',
    line,
    '',
  ].join('\n');
}
