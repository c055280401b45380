#!/usr/bin/env node
/**
 * `npm create gatehouse-app NAME` (or `npx create-gatehouse-app NAME`): copies the template into
 * ./NAME with the app's name filled in. No secret goes anywhere: the app is a public client (PKCE).
 */
import { cpSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const name = process.argv[2];
if (!name || name === '--help' || name === '-h') {
  console.log(
    'usage: npm create gatehouse-app NAME\n\nCreates ./NAME: a Vite + React microapp on @gatehouse/sdk with its security plan (manifest.json).',
  );
  process.exit(name ? 0 : 2);
}
if (!/^[a-z][a-z0-9-]{1,62}$/.test(name)) {
  console.error(
    'create-gatehouse-app: NAME must be lower-case letters, digits and dashes, starting with a letter',
  );
  process.exit(2);
}
if (existsSync(name)) {
  console.error(`create-gatehouse-app: ${name} exists already; pick another name or remove it`);
  process.exit(1);
}
const template = fileURLToPath(new URL('template', import.meta.url));
cpSync(template, name, { recursive: true });
for (const file of walk(name)) {
  const text = readFileSync(file, 'utf8');
  if (text.includes('__APP_NAME__')) writeFileSync(file, text.replaceAll('__APP_NAME__', name));
}
console.log(`Created ${name}. Next:
  cd ${name} && npm install
  npm run check                                  # policy check + secret scan, as CI runs them
  npx gatehouse app register manifest.json --bundle .
  npm run dev`);

function* walk(dir) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) yield* walk(path);
    else yield path;
  }
}
