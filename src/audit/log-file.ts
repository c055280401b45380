/** SQLite: the log's own file in the data dir, attached to the store's connection under this schema. */
export const auditFile = { schema: 'audit', name: 'audit.db' } as const;

/** Of a connection's `pragma database_list`, the file holding the log: the attached audit file, else main. */
export function logFileOf<T extends { name: string }>(files: readonly T[]): T | undefined {
  return files.find((row) => row.name === auditFile.schema) ?? files.find((row) => row.name === 'main');
}
