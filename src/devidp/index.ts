import type { CreateDevIdpOptions, DevIdp } from './provider.js';

export type { CreateDevIdpOptions, DevIdp } from './provider.js';
export { mintDevIdToken, type MintDevIdTokenOptions } from './mint.js';

/**
 * Starts the development IdP. oidc-provider is loaded only here, so commands that merely mint a demo
 * ID token start fast and without its runtime warning. The warnings it prints while loading and starting
 * concern only this demo IdP; they are held back and answered as one line saying so (`notice`).
 */
export async function createDevIdp(options: CreateDevIdpOptions): Promise<DevIdp & { notice?: string }> {
  const held: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    const text = args.map(String).join(' ');
    if (text.includes('oidc-provider WARNING')) held.push(text);
    else warn(...args);
  };
  try {
    const provider = await import('./provider.js');
    const idp = await provider.createDevIdp(options);
    return held.length ? Object.assign(idp, { notice: providerNotice(held) }) : idp;
  } finally {
    console.warn = warn;
  }
}

/** What oidc-provider's start-up warnings mean here, in one line. */
export function providerNotice(warnings: readonly string[]): string {
  const meanings = [
    [/in-memory adapter/, 'sessions live in memory'],
    [/devInteractions/, 'its login page is the built-in one'],
    [/Unsupported runtime/, 'it prefers Node 22+ but works on this one'],
    [/signing keys/, 'its keys are development keys'],
  ] as const;
  const said = meanings
    .filter(([pattern]) => warnings.some((w) => pattern.test(w)))
    .map(([, meaning]) => meaning);
  const other = warnings.filter((w) => !meanings.some(([pattern]) => pattern.test(w))).length;
  return (
    `development IdP (demo only): ${[...said, ...(other > 0 ? [`${other} more oidc-provider warning(s)`] : [])].join(', ')}; ` +
    'a real deployment signs users in through the company IdP (idp.issuer)'
  );
}
export { signInAtDevIdp, type DevSignInOptions } from './sign-in.js';
