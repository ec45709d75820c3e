/**
 * The agent bundle's manifest (`manifest.json` at the top of `opsplane-agent-<version>/` in the
 * .tar.gz the platform uploads to devices). Shape only; writing and checking bundles is
 * @opsplane/platform's job.
 */
import { z } from 'zod';

/** `1.2.3` or `1.2.3-rc.1`: also a directory name on devices (`versions/<version>/`), so no `/` or `..`. */
export const AgentBundleVersionSchema = z
  .string()
  .max(64, { message: 'version must be at most 64 characters' })
  .regex(/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/, {
    message: "version must look like '1.2.3' or '1.2.3-rc.1'",
  })
  .refine((s) => !s.includes('..'), { message: "version must not contain '..'" });

/** A file's path inside the bundle: relative, `/`-separated, no empty, `.` or `..` segments. */
export const AgentBundlePathSchema = z
  .string()
  .min(1)
  .max(255)
  .refine((p) => !p.startsWith('/') && !p.includes('\\') && !p.includes('\0'), {
    message: 'bundle paths must be relative and use /',
  })
  .refine((p) => p.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..'), {
    message: "bundle paths must not have empty, '.' or '..' segments",
  });

export const AgentBundleFileSchema = z.object({
  sha256: z.string().regex(/^[0-9a-f]{64}$/, { message: 'sha256 must be 64 lowercase hex digits' }),
  bytes: z.number().int().nonnegative(),
});

export const AgentBundleManifestSchema = z.object({
  format: z.literal(1),
  name: z.literal('opsplane-agent'),
  version: AgentBundleVersionSchema,
  entry: z.literal('agent.mjs'),
  /** Node.js range the bundle needs on the device, e.g. `>=20.18`. */
  node: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[<>=^~ 0-9.x|*-]+$/, { message: "node must be a semver range such as '>=20.18'" }),
  /** Every file of the bundle except manifest.json, by path relative to the top directory. */
  files: z.record(AgentBundlePathSchema, AgentBundleFileSchema),
});
export type AgentBundleManifest = z.infer<typeof AgentBundleManifestSchema>;
export type AgentBundleFile = z.infer<typeof AgentBundleFileSchema>;
