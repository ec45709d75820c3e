/** Options every server-facing subcommand shares, defined once so their help reads the same. */
export const serverOption = {
  type: 'string',
  short: 's',
  value: '<url>',
  description: 'server URL (default: the one you logged in to)',
} as const;

export const jsonOption = { type: 'boolean', description: 'print the server’s JSON answer' } as const;
