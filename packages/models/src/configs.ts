/**
 * Reading a package's config files (read-only): what is in the package's config_dir on the agent.
 * GET /agents/{id}/packages/{package}/configs lists the files, …/configs/{file_name} reads one —
 * so a UI can show the diff of a config push against the agent's current file. File names are
 * plain names inside config_dir (ConfigFileNameSchema); the agent refuses anything else.
 */
import { z } from 'zod';
import { TimestampSchema } from './time.js';

export const ConfigFileInfoSchema = z.object({
  file_name: z.string(),
  bytes: z.number().int().nonnegative(),
  modified_at: TimestampSchema,
});
export type ConfigFileInfo = z.infer<typeof ConfigFileInfoSchema>;

export const ConfigFileListSchema = z.object({
  agent_id: z.string(),
  package: z.string(),
  files: z
    .array(ConfigFileInfoSchema)
    .nullish()
    .transform((v) => v ?? []),
});
export type ConfigFileList = z.infer<typeof ConfigFileListSchema>;

/** One file; `exists: false` (and empty content) when the package has no such file yet. */
export const ConfigFileContentSchema = z.object({
  agent_id: z.string(),
  package: z.string(),
  file_name: z.string(),
  exists: z.boolean(),
  content: z.string(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().describe("hex SHA-256 of the content; '' when the file does not exist"),
  modified_at: TimestampSchema.nullable(),
});
export type ConfigFileContent = z.infer<typeof ConfigFileContentSchema>;
