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

/** The consent screen: what the app asks for, in plain words, and a form to allow or deny. */
export function consentPage(options: {
  config: Config;
  appName: string;
  user: string;
  scopes: readonly string[];
  login: string;
  csrf: string;
}): string {
  const items = options.scopes
    .map((scope) => `<li>${escape(describeScope(options.config, scope))} <code>${escape(scope)}</code></li>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Allow ${escape(options.appName)}?</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<h1>${escape(options.appName)} wants to use your CRM access</h1>
<p>Signed in as <strong>${escape(options.user)}</strong>. If you allow it, the app may:</p>
<ul>
${items}
</ul>
<p>It can never see more than you can, and you can revoke its access at any time.</p>
<form method="post" action="consent">
<input type="hidden" name="login" value="${escape(options.login)}">
<input type="hidden" name="csrf" value="${escape(options.csrf)}">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
</body></html>
`;
}

/** A page for errors that must not be sent to an unverified redirect URI. */
export function errorPage(title: string, detail: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title></head>
<body><h1>${escape(title)}</h1><p>${escape(detail)}</p></body></html>
`;
}
