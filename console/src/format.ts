/** A time as people read it, in their own locale. */
export function when(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : 'never';
}

/** `read:contact.basic` → "read contact basic fields". */
export function scopeLabel(scope: string): string {
  const match = /^(read|write):(\w+)\.(\w+)$/.exec(scope);
  return match ? `${match[1]} ${match[2]} (${match[3]})` : scope;
}
