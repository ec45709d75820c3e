/**
 * Devices on the wire (guide §4.3). Login secrets are write-only: requests may carry password,
 * private_key and passphrase; responses only say whether each is set. The response schema is
 * also the serializer, so a secret that slipped into a response object would be stripped.
 */
import { z } from 'zod';
import { AreaNameSchema } from '@opsplane/models';
import { PageQuery, TimestampOut } from './common.js';

export const DEVICE_STATUSES = ['new', 'deploying', 'online', 'offline', 'failed', 'uninstalled'] as const;
export const DeviceStatusSchema = z.enum(DEVICE_STATUSES);
export type DeviceStatus = z.infer<typeof DeviceStatusSchema>;
export const DeviceOsSchema = z.enum(['linux', 'windows']);
export const DeviceArchSchema = z.enum(['amd64', 'arm64']);
export const LoginMethodSchema = z.enum(['ssh', 'winrm']);
export type DeviceOs = z.infer<typeof DeviceOsSchema>;
export type LoginMethod = z.infer<typeof LoginMethodSchema>;

export const DeviceNameSchema = z
  .string()
  .min(1, { message: 'name must not be empty' })
  .max(128, { message: 'name must be at most 128 characters' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, {
    message: "name may contain only letters, digits, '.', '_' and '-', and must start with a letter or digit",
  });

export const DeviceIpSchema = z.union([z.ipv4(), z.ipv6()], {
  message: 'ip must be an IPv4 or IPv6 address',
});

export const MetadataSchema = z
  .record(
    z
      .string()
      .min(1)
      .max(64)
      .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, { message: 'metadata keys must be simple names' }),
    z.string().max(1024),
  )
  .refine((m) => Object.keys(m).length <= 64, { message: 'metadata may hold at most 64 keys' });

const PasswordIn = z.string().min(1).max(1024);
const PrivateKeyIn = z
  .string()
  .max(16 * 1024)
  .refine((k) => /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(k), {
    message: 'private_key must be a PEM or OpenSSH private key',
  });
const UsernameIn = z.string().min(1).max(128);

export const DEFAULT_PORT: Record<LoginMethod, number> = { ssh: 22, winrm: 5985 };
export const DEFAULT_LOGIN_METHOD: Record<DeviceOs, LoginMethod> = { linux: 'ssh', windows: 'winrm' };

export const LoginCreateSchema = z
  .object({
    port: z.number().int().min(1).max(65535).optional(),
    username: UsernameIn,
    password: PasswordIn.optional(),
    private_key: PrivateKeyIn.optional(),
    passphrase: PasswordIn.optional(),
  })
  .strict();

export const DeviceCreateSchema = z
  .object({
    name: DeviceNameSchema,
    ip: DeviceIpSchema,
    function_area: AreaNameSchema,
    os: DeviceOsSchema,
    arch: DeviceArchSchema.default('amd64'),
    login_method: LoginMethodSchema.optional(),
    login: LoginCreateSchema,
    agent_version: z.string().max(64).optional(),
    metadata: MetadataSchema.optional(),
  })
  .strict()
  .superRefine((d, ctx) => {
    for (const p of loginProblems(d.os, d.login_method ?? DEFAULT_LOGIN_METHOD[d.os], d.login)) {
      ctx.addIssue({ code: 'custom', ...p });
    }
  });
export type DeviceCreate = z.infer<typeof DeviceCreateSchema>;
export type DeviceCreateInput = z.input<typeof DeviceCreateSchema>;

/** null clears a secret, absence keeps it. */
export const LoginUpdateSchema = z
  .object({
    port: z.number().int().min(1).max(65535).optional(),
    username: UsernameIn.optional(),
    password: PasswordIn.nullable().optional(),
    private_key: PrivateKeyIn.nullable().optional(),
    passphrase: PasswordIn.nullable().optional(),
  })
  .strict();

export const DeviceUpdateSchema = z
  .object({
    name: DeviceNameSchema.optional(),
    ip: DeviceIpSchema.optional(),
    function_area: AreaNameSchema.optional(),
    os: DeviceOsSchema.optional(),
    arch: DeviceArchSchema.optional(),
    login_method: LoginMethodSchema.optional(),
    login: LoginUpdateSchema.optional(),
    status: DeviceStatusSchema.optional(),
    agent_version: z.string().max(64).optional(),
    metadata: MetadataSchema.optional(),
  })
  .strict()
  .refine((u) => Object.keys(u).length > 0, { message: 'nothing to update' });
export type DeviceUpdate = z.infer<typeof DeviceUpdateSchema>;

interface LoginLike {
  private_key?: string | null | undefined;
  passphrase?: string | null | undefined;
}

/** Rules that span fields; also applied to the merged device on update. */
export function loginProblems(
  os: DeviceOs,
  method: LoginMethod,
  login: LoginLike,
): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  if (os === 'linux' && method === 'winrm')
    out.push({ path: ['login_method'], message: 'linux devices cannot use winrm' });
  if (method === 'winrm' && login.private_key) {
    out.push({ path: ['login', 'private_key'], message: 'winrm logins take a password, not a private key' });
  }
  if (login.passphrase && !login.private_key) {
    out.push({ path: ['login', 'passphrase'], message: 'passphrase only makes sense with a private_key' });
  }
  return out;
}

export const DeviceSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    ip: z.string(),
    function_area: z.string(),
    status: DeviceStatusSchema,
    agent_code: z.string(),
    agent_version: z.string(),
    os: DeviceOsSchema,
    arch: DeviceArchSchema,
    login_method: LoginMethodSchema,
    login: z.object({
      port: z.number().int(),
      username: z.string(),
      has_password: z.boolean(),
      has_private_key: z.boolean(),
      has_passphrase: z.boolean(),
    }),
    metadata: z.record(z.string(), z.string()),
    created_at: TimestampOut,
    updated_at: TimestampOut,
  })
  .meta({ id: 'Device' });
export type Device = z.infer<typeof DeviceSchema>;

export const DEVICE_SORT_FIELDS = [
  'name',
  'ip',
  'function_area',
  'status',
  'os',
  'arch',
  'agent_code',
  'created_at',
  'updated_at',
] as const;
export type DeviceSortField = (typeof DEVICE_SORT_FIELDS)[number];

const csvOf = <T extends string>(values: readonly [T, ...T[]], name: string) =>
  z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.enum(values, { message: `${name} must be one of ${values.join(', ')}` })).min(1));

export const DeviceListQuerySchema = z
  .object({
    ...PageQuery,
    q: z
      .string()
      .max(200)
      .optional()
      .describe('free text over name, ip, function_area, status, os, agent_code'),
    name: z.string().max(200).optional().describe('substring of the name (case-insensitive)'),
    ip: z.string().max(64).optional().describe('substring of the ip'),
    function_area: z.string().max(64).optional(),
    status: csvOf(DEVICE_STATUSES, 'status').optional().describe('one or more statuses, comma separated'),
    os: DeviceOsSchema.optional(),
    arch: DeviceArchSchema.optional(),
    login_method: LoginMethodSchema.optional(),
    agent_code: z.string().max(128).optional(),
    sort: z.enum(DEVICE_SORT_FIELDS).default('name'),
    order: z.enum(['asc', 'desc']).default('asc'),
  })
  .strict();
export type DeviceListQuery = z.infer<typeof DeviceListQuerySchema>;

export const DeviceListResponseSchema = z.object({
  devices: z.array(DeviceSchema),
  total: z.number().int(),
  page: z.number().int(),
  pageSize: z.number().int(),
});
export type DeviceListResponse = z.infer<typeof DeviceListResponseSchema>;

export const ImportQuerySchema = z
  .object({
    dry_run: z
      .enum(['true', 'false'])
      .default('false')
      .transform((v) => v === 'true'),
  })
  .strict();

export const ImportReportSchema = z.object({
  total: z.number().int().describe('data rows in the file'),
  created: z.number().int(),
  updated: z.number().int(),
  rejected: z.array(
    z.object({
      row: z.number().int().describe('1-based position among the data rows (the header is not a row)'),
      line: z.number().int().optional().describe('CSV only: line of the file the row starts on'),
      name: z.string().optional(),
      reason: z.string(),
    }),
  ),
  dry_run: z.boolean(),
  secrets_dropped: z
    .array(
      z.object({
        name: z.string(),
        fields: z.array(z.string()).describe('password, private_key, passphrase'),
        because: z.array(z.string()).describe('the fields that re-pointed the device: ip, login.port, …'),
      }),
    )
    .optional()
    .describe(
      'updated devices whose stored login secrets were dropped because their row changed where they ' +
        'would be sent (address, port, user, login method, jump host, WinRM transport) without giving new ones',
    ),
});
export type ImportReport = z.infer<typeof ImportReportSchema>;
export type ImportRejection = ImportReport['rejected'][number];

/** Import bodies: CSV text, a JSON array, or {"devices": [...]}; rows are checked one by one. */
export const ImportBodySchema = z
  .union([z.string(), z.array(z.unknown()), z.object({ devices: z.array(z.unknown()) })], {
    message: 'expected CSV text (text/csv), a JSON array of devices, or {"devices": [...]}',
  })
  .describe('text/csv with a header line, or application/json');

export type DeviceArch = z.infer<typeof DeviceArchSchema>;
export type DeviceName = z.infer<typeof DeviceNameSchema>;
export type DeviceIp = z.infer<typeof DeviceIpSchema>;
export type Metadata = z.infer<typeof MetadataSchema>;
export type LoginCreate = z.infer<typeof LoginCreateSchema>;
export type LoginUpdate = z.infer<typeof LoginUpdateSchema>;
export type ImportQuery = z.infer<typeof ImportQuerySchema>;
export type ImportBody = z.infer<typeof ImportBodySchema>;
