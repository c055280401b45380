import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorRegistry, GatehouseError, toProblem, type ErrorCode } from './index.js';

/**
 * The README's error table is the documentation every problem `type` points to: one row per registry
 * code with its status and title, as Fastify's errors.test.js pins its codes to its docs.
 */
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const section = readme.slice(readme.indexOf('### Errors'));
const rows = new Map(
  [...section.matchAll(/^\| <a id="([a-z-]+)"><\/a>`([A-Z_]+)`\s*\| (\d{3})\s*\| ([^|]+?)\s*\|/gm)].map(
    ([, slug, code, status, title]) => [code, { slug, status: Number(status), title: title.trim() }],
  ),
);

describe('the README error table', () => {
  it.each(Object.keys(errorRegistry) as ErrorCode[])('documents %s with its status and title', (code) => {
    const { status, title } = errorRegistry[code];
    const problem = toProblem(new GatehouseError(code, 'x'));
    expect(rows.get(code)).toEqual({ slug: problem.type.split('/').at(-1), status, title });
  });

  it('has no row for a code that does not exist', () => {
    expect([...rows.keys()].filter((code) => !(code in errorRegistry))).toEqual([]);
  });
});
