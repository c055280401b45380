/** One entry of a bundle, whatever holds it: a folder, a zip or a tar stream. */

export type EntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';

export interface BundleEntry {
  /** The name as stored (untrusted: see entry-name.ts). */
  readonly name: string;
  readonly type: EntryType;
  /** Uncompressed size in bytes. */
  readonly size: number;
  /** Why the contents cannot be read (encrypted, an unknown compression method); absent when they can. */
  readonly unreadable?: string;
  /** Bytes of the bundle consumed up to this entry, for progress. */
  readonly consumed: number;
  /**
   * The contents of a file. Call at most once, and before taking the next entry: stream readers move
   * on. A file not read is skipped without being decompressed.
   */
  read(): Promise<Buffer>;
}

/** A bundle opened for reading: its entries in storage order and its size for progress. */
export interface OpenBundle {
  readonly total: number;
  entries(): AsyncGenerator<BundleEntry>;
  close(): Promise<void>;
}
