import { createHash } from 'node:crypto';
import type { Config } from '../config/index.js';

const objects: Record<string, string> = {
  account: 'accounts',
  contact: 'contacts',
  opportunity: 'opportunities',
  note: 'notes',
};
const special: Record<string, string> = {
  admin: 'Administer Gatehouse: apps, policies, incidents and data-subject requests',
  'audit:read': 'Read the audit trail',
  review: 'Review security plans and elevation requests',
};

/** A scope in plain words, from the fieldsets of the configuration: "See contacts: email, phone". */
export function describeScope(config: Config, scope: string): string {
  if (Object.hasOwn(special, scope)) return special[scope] as string;
  const match = /^(read|write):([a-z]+)\.([a-z_]+)$/.exec(scope);
  const fieldset = Object.hasOwn(config.scopes, scope) ? config.scopes[scope] : undefined;
  if (!match || !fieldset) return scope;
  const fields = fieldset.fields.map((field) => field.replaceAll('_', ' ')).join(', ');
  const what = objects[fieldset.object] ?? fieldset.object;
  if (match[1] === 'read') return `See ${what}: ${fields}`;
  return `Create and change ${what}: ${fields}`;
}

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Where a user revokes an app later: the console's page of the apps they allowed. */
export const revokeLaterPath = '/console/my-apps';

// One stylesheet for the broker's pages, admitted by its hash so the CSP needs no 'unsafe-inline'.
const styles = `
:root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
body { margin: 0; background: #eef1f5; color: #1b1f24; line-height: 1.5; }
main { max-width: 34rem; margin: 3rem auto; background: #fff; border-radius: 12px; padding: 2rem;
  box-shadow: 0 2px 12px rgb(0 0 0 / 12%); }
h1 { font-size: 1.4rem; margin: 0 0 .5rem; }
.who { color: #3d4650; margin: 0 0 1.25rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0 0 1.25rem; }
dt { font-weight: 600; } dd { margin: 0; }
h2 { font-size: 1rem; margin: 1.25rem 0 .5rem; }
ul { padding-left: 1.2rem; margin: 0 0 1rem; } li { margin: .35rem 0; }
code { font-size: .8rem; color: #3d4650; background: #eef1f5; padding: 0 .3rem; border-radius: 4px; }
.actions { display: flex; gap: .75rem; margin-top: 1.5rem; }
button { font: inherit; font-weight: 600; padding: .6rem 1.4rem; border-radius: 8px; cursor: pointer;
  border: 2px solid #0b57d0; }
button.allow { background: #0b57d0; color: #fff; } button.deny { background: #fff; color: #0b57d0; }
button:focus-visible, a:focus-visible { outline: 3px solid #f59e0b; outline-offset: 2px; }
a { color: #0b57d0; }
.note { font-size: .9rem; color: #3d4650; }
`;

/** The CSP source admitting `style` above. */
export const styleSource = `'sha256-${createHash('sha256').update(styles).digest('base64')}'`;

/**
 * The CSP source for a redirect URI, so `form-action` admits the hop after the consent form: browsers
 * apply form-action to the redirect that follows the POST. Origin only (CSP ignores paths after a
 * redirect); a private-use scheme (RFC 8252) becomes a scheme source. Undefined for anything else.
 */
export function redirectSource(redirectUri: string): string | undefined {
  if (!URL.canParse(redirectUri)) return undefined;
  const url = new URL(redirectUri);
  if (url.protocol === 'http:' || url.protocol === 'https:') return url.origin;
  return /^[a-z][a-z0-9+.-]*:$/.test(url.protocol) ? url.protocol : undefined;
}

/** The consent screen: who asks, why, what it will see in plain words, and a form to allow or deny. */
export function consentPage(options: {
  config: Config;
  appName: string;
  owner?: string;
  purpose?: string;
  user: string;
  scopes: readonly string[];
  /** The accounts a capability narrows the sign-in to, when it asks for one. */
  accounts?: readonly string[];
  login: string;
  csrf: string;
}): string {
  const items = options.scopes
    .map((scope) => `<li>${escape(describeScope(options.config, scope))} <code>${escape(scope)}</code></li>`)
    .join('\n');
  const app = escape(options.appName);
  const facts = [
    options.owner ? `<dt>Made by</dt><dd>${escape(options.owner)}</dd>` : '',
    options.purpose ? `<dt>Purpose</dt><dd>${escape(options.purpose)}</dd>` : '',
  ].join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Allow ${app}?</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${styles}</style></head>
<body>
<main aria-labelledby="title">
<h1 id="title">Allow ${app} to use your CRM access?</h1>
<p class="who">Signed in as <strong>${escape(options.user)}</strong></p>
${facts ? `<dl>${facts}</dl>` : ''}
<h2 id="what">If you allow it, the app may:</h2>
<ul aria-labelledby="what">
${items}
</ul>
${options.accounts ? `<p class="note">Only on these ${options.accounts.length} accounts: ${options.accounts.map((id) => `<code>${escape(id)}</code>`).join(', ')}.</p>` : ''}
<p class="note">It can never see more than you can, and every use is recorded.</p>
<form method="post" action="consent" aria-label="Your answer">
<input type="hidden" name="login" value="${escape(options.login)}">
<input type="hidden" name="csrf" value="${escape(options.csrf)}">
<div class="actions">
<button class="allow" type="submit" name="decision" value="allow">Allow</button>
<button class="deny" type="submit" name="decision" value="deny">Deny</button>
</div>
</form>
<p class="note">You can revoke this app's access at any time in <a href="${revokeLaterPath}">My apps</a>.</p>
</main>
</body></html>
`;
}

/** A page for errors that must not be sent to an unverified redirect URI. */
export function errorPage(title: string, detail: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${styles}</style></head>
<body><main><h1>${escape(title)}</h1><p>${escape(detail)}</p></main></body></html>
`;
}
