import { crmPackages } from './crm-hosts.js';
import { printable } from './entry-name.js';
import type { LineIndex } from './lines.js';
import type { ScanFinding, Severity } from './types.js';

/**
 * The dependency manifest (package.json): every dependency the app ships with must name one exact
 * version, so what was reviewed is what runs; a range, a tag or a URL without a commit can change
 * under the app after approval. Peer dependencies are ranges by design and are not checked.
 */

type Pin = 'exact' | 'local' | 'range' | 'remote' | 'insecure';

const sections: readonly { name: string; severity: Severity }[] = [
  { name: 'dependencies', severity: 'medium' },
  { name: 'optionalDependencies', severity: 'medium' },
  { name: 'devDependencies', severity: 'low' },
];

const exactVersion = /^=?v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;
const commit = /#[0-9a-f]{40}$/;

/** How exactly a dependency specifier names what gets installed. */
export function pinOf(spec: string): Pin {
  const value = spec.trim();
  if (exactVersion.test(value)) return 'exact';
  // npm aliases: `npm:other-package@1.2.3`
  const alias = /^npm:(?:@[^/@]+\/)?[^@]+@(.+)$/.exec(value);
  if (alias) return pinOf(alias[1] as string);
  if (/^(?:file|link|workspace|portal):/.test(value)) return 'local';
  if (/^http:\/\//i.test(value) || /^git\+http:\/\//i.test(value)) return 'insecure';
  if (/^(?:git\+?[a-z]*:|git@|github:|gitlab:|bitbucket:|gist:|https?:)/i.test(value)) {
    return commit.test(value) ? 'exact' : 'remote';
  }
  // GitHub shorthand `user/repo#ref`
  if (/^[A-Za-z0-9][\w.-]*\/[\w.-]+(?:#.*)?$/.test(value)) return commit.test(value) ? 'exact' : 'remote';
  return 'range';
}

export interface ManifestCheck {
  readonly findings: ScanFinding[];
  /** Whether the manifest lists dependencies at all (then it needs a lockfile). */
  readonly hasDependencies: boolean;
}

export function checkPackageJson(text: string, file: string, lines: LineIndex): ManifestCheck {
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch {
    return {
      findings: [
        {
          rule: 'deps.manifest_invalid',
          severity: 'medium',
          file,
          line: 1,
          message:
            'package.json is not valid JSON, so its dependencies could not be checked: fix it and scan again',
        },
      ],
      hasDependencies: false,
    };
  }
  if (typeof manifest !== 'object' || manifest === null) return { findings: [], hasDependencies: false };

  const findings: ScanFinding[] = [];
  let hasDependencies = false;
  for (const { name: section, severity } of sections) {
    const deps = (manifest as Record<string, unknown>)[section];
    if (typeof deps !== 'object' || deps === null || Array.isArray(deps)) continue;
    const sectionAt = text.indexOf(`"${section}"`);
    for (const [name, spec] of Object.entries(deps)) {
      hasDependencies = true;
      const line = lineOfKey(text, name, sectionAt, lines);
      const crm = Object.hasOwn(crmPackages, name) ? crmPackages[name] : undefined;
      if (crm) {
        findings.push({
          rule: 'crm.sdk_dependency',
          severity: 'high',
          file,
          line,
          message: `${section} include ${shown(name)}, a ${crm} SDK that reaches the CRM directly, bypassing the gateway: read and write through the Gatehouse gateway instead`,
        });
      }
      const pin = typeof spec === 'string' ? pinOf(spec) : 'range';
      if (pin === 'exact' || pin === 'local') continue;
      findings.push(
        pin === 'range'
          ? {
              rule: 'deps.unpinned',
              severity,
              file,
              line,
              message: `${section}: ${shown(name)} is not pinned to one exact version: write the version the app was tested with (1.2.3), not a range or a tag`,
            }
          : {
              rule: 'deps.remote_source',
              severity: pin === 'insecure' ? 'high' : severity,
              file,
              line,
              message:
                pin === 'insecure'
                  ? `${section}: ${shown(name)} is fetched over plain http, so anyone on the way can change it: use a registry version`
                  : `${section}: ${shown(name)} comes from a URL or repository without a commit hash, so it can change after approval: use a registry version or pin the commit`,
            },
      );
    }
  }
  return { findings, hasDependencies };
}

/** The line of `"name":` inside its section, or of the section itself. */
function lineOfKey(text: string, name: string, sectionAt: number, lines: LineIndex): number {
  if (sectionAt < 0) return 1;
  const at = text.indexOf(JSON.stringify(name), sectionAt);
  return lines.lineOf(at < 0 ? sectionAt : at);
}

/** Package names come from the bundle: printable and short. */
function shown(name: string): string {
  return printable(name.length > 80 ? `${name.slice(0, 80)}…` : name);
}
