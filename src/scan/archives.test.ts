import { mkdtempSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanBundle } from './index.js';
import { tarArchive, zipArchive } from './test-support.js';

let dir: string;
let n = 0;
const bundleInvalid = expect.objectContaining({ code: 'BUNDLE_INVALID' });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-scan-archives-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, data: Buffer | string): string {
  const path = join(dir, `${n++}-${name}`);
  writeFileSync(path, data);
  return path;
}

const rulesOf = async (path: string) => (await scanBundle(path)).findings.map((f) => `${f.rule} ${f.file}`);

describe('zip bundles', () => {
  it('reads stored and deflated entries, with UTF-8 names', async () => {
    const path = file(
      'app.zip',
      zipArchive([
        { name: 'src/', method: 0, mode: 0o040755 },
        { name: 'src/app.js', data: 'export const answer = 42;\n' },
        { name: 'src/données.json', data: '{"a": 1}', method: 0 },
      ]),
    );
    const report = await scanBundle(path);
    expect(report).toMatchObject({ kind: 'zip', files: 2, findings: [] });
  });

  it('reports zip-slip entry names ("../", absolute, drive letters) and never extracts anything', async () => {
    const path = file(
      'slip.zip',
      zipArchive([
        { name: '../../.bashrc', data: 'echo owned' },
        { name: '/etc/cron.d/job', data: '* * * * * root true' },
        { name: 'C:\\Windows\\evil.dll', data: 'x' },
        { name: 'ok/..\\..\\evil.js', data: 'x' },
        { name: 'fine/file.js', data: 'x' },
      ]),
    );
    const findings = (await scanBundle(path)).findings.filter((f) => f.rule === 'bundle.path_traversal');
    expect(findings.map((f) => f.file).sort()).toEqual(
      ['../../.bashrc', '/etc/cron.d/job', 'C:\\Windows\\evil.dll', 'ok/..\\..\\evil.js'].sort(),
    );
    expect(findings.every((f) => f.severity === 'high')).toBe(true);
  });

  it('escapes control and bidi characters in entry names before they reach a terminal', async () => {
    const path = file(
      'names.zip',
      zipArchive([
        { name: 'a\x1b[31mred\u202egnp.js', mode: 0o120777, data: 'x' },
        { name: '../\x07bell.js', data: 'x' },
      ]),
    );
    const report = await scanBundle(path);
    const shown = report.findings.map((f) => f.file).join('\n');
    expect(shown).not.toContain('\x1b');
    expect(shown).not.toContain('\u202e');
    expect(shown).not.toContain('\x07');
    expect(shown).toContain('a\\x1b[31mred\\u202egnp.js');
  });

  it('reports symlink entries without following them', async () => {
    const path = file('link.zip', zipArchive([{ name: 'secrets', data: '/etc/shadow', mode: 0o120777 }]));
    expect(await rulesOf(path)).toEqual(['bundle.link secrets']);
  });

  it('refuses a zip whose entries expand beyond the ratio limit (a zip bomb)', async () => {
    const path = file('bomb.zip', zipArchive([{ name: 'zeros.txt', data: Buffer.alloc(8 * 1024 * 1024) }]));
    await expect(scanBundle(path)).rejects.toThrow(bundleInvalid);
  });

  it('refuses a zip whose declared sizes add up past the total limit', async () => {
    const path = file('big.zip', zipArchive([{ name: 'a.txt', data: 'x'.repeat(600), method: 0 }]));
    await expect(scanBundle(path, { limits: { maxTotalBytes: 500 } })).rejects.toThrow(bundleInvalid);
  });

  it('refuses entries that share their compressed data (the overlapping-entry bomb)', async () => {
    const path = file(
      'overlap.zip',
      zipArchive([
        { name: 'a.txt', data: 'hello' },
        { name: 'b.txt', sharesDataWith: 0 },
      ]),
    );
    await expect(scanBundle(path)).rejects.toThrow(bundleInvalid);
  });

  it('refuses an entry that inflates past its declared size', async () => {
    const path = file('liar.zip', zipArchive([{ name: 'a.txt', data: 'x'.repeat(5000), declaredSize: 10 }]));
    await expect(scanBundle(path)).rejects.toThrow(bundleInvalid);
  });

  it('refuses more entries than the limit', async () => {
    const path = file('many.zip', zipArchive([{ name: 'a' }, { name: 'b' }, { name: 'c' }]));
    await expect(scanBundle(path, { limits: { maxEntries: 2 } })).rejects.toThrow(bundleInvalid);
  });

  it('reports encrypted entries and nested archives as unscanned', async () => {
    const path = file(
      'enc.zip',
      zipArchive([
        { name: 'hidden.js', data: 'x', encrypted: true },
        { name: 'vendor.zip', data: 'PK' },
      ]),
    );
    const report = await scanBundle(path);
    expect(report.findings.map((f) => [f.rule, f.file, f.severity])).toEqual([
      ['bundle.unscanned', 'hidden.js', 'medium'],
      ['bundle.unscanned', 'vendor.zip', 'medium'],
    ]);
    expect(report.findings[0]!.message).toContain('encrypted');
  });

  it('refuses a truncated or garbled zip with one clear error', async () => {
    const whole = zipArchive([{ name: 'a.js', data: 'x'.repeat(100) }]);
    await expect(scanBundle(file('cut.zip', whole.subarray(0, 60)))).rejects.toThrow(bundleInvalid);
    const garbled = Buffer.from(whole);
    garbled.writeUInt32LE(0xdeadbeef, whole.length - 22 + 16); // central directory offset
    await expect(scanBundle(file('garbled.zip', garbled))).rejects.toThrow(bundleInvalid);
  });
});

describe('tar bundles', () => {
  it('reads a gzipped tar with a pax long name, and a plain tar', async () => {
    const long = `src/${'deep/'.repeat(30)}app.js`;
    const entries = [
      { name: 'package/', type: '5' as const },
      { name: `package/${long}`, data: 'export default 1;\n' },
    ];
    const tgz = await scanBundle(file('app.tgz', tarArchive(entries)));
    expect(tgz).toMatchObject({ kind: 'tgz', files: 1, findings: [] });
    const tar = await scanBundle(file('app.tar', tarArchive(entries, false)));
    expect(tar).toMatchObject({ kind: 'tar', files: 1, findings: [] });
  });

  it('reports path traversal, symlinks and hard links; links are never followed', async () => {
    const path = file(
      'evil.tgz',
      tarArchive([
        { name: '../../home/user/.ssh/authorized_keys', data: 'ssh-ed25519 AAAA' },
        { name: 'link', type: '2', linkName: '/etc/passwd' },
        { name: 'hard', type: '1', linkName: '/etc/shadow' },
      ]),
    );
    expect((await rulesOf(path)).sort()).toEqual([
      'bundle.link hard',
      'bundle.link link',
      'bundle.path_traversal ../../home/user/.ssh/authorized_keys',
    ]);
  });

  it('refuses a gzip stream that expands past the limit (a decompression bomb)', async () => {
    const bomb = tarArchive([{ name: 'zeros', data: Buffer.alloc(20 * 1024 * 1024) }]);
    await expect(scanBundle(file('bomb.tgz', bomb))).rejects.toThrow(bundleInvalid);
    await expect(
      scanBundle(file('small.tgz', tarArchive([{ name: 'a', data: 'x'.repeat(4096) }])), {
        limits: { maxTotalBytes: 2048 },
      }),
    ).rejects.toThrow(bundleInvalid);
  });

  it('refuses a corrupt header and a gzip that holds no tar', async () => {
    const tar = tarArchive([{ name: 'a.js', data: 'x' }], false);
    tar[10] = 0x41; // changes the name, not the checksum
    await expect(scanBundle(file('corrupt.tar', tar))).rejects.toThrow(bundleInvalid);
    await expect(
      scanBundle(file('notar.tgz', gzipSync('just text, not a tar archive\n'.repeat(40)))),
    ).rejects.toThrow(bundleInvalid);
  });

  it('refuses a truncated tgz', async () => {
    const whole = tarArchive([{ name: 'a.js', data: 'x'.repeat(100_000) }]);
    await expect(scanBundle(file('cut.tgz', whole.subarray(0, whole.length / 2)))).rejects.toThrow(
      bundleInvalid,
    );
  });
});

describe('folder bundles', () => {
  it('skips dependency and VCS folders, and reports links without following them', async () => {
    const root = join(dir, 'folder');
    mkdirSync(join(root, 'node_modules', 'leaky'), { recursive: true });
    mkdirSync(join(root, '.git'), { recursive: true });
    mkdirSync(join(root, 'src'), { recursive: true });
    writeFileSync(
      join(root, 'node_modules', 'leaky', 'index.js'),
      `const k = '${['AKIA', 'IOSFODNN7EXAMPLE'].join('')}';`,
    );
    writeFileSync(join(root, '.git', 'config'), '[core]');
    writeFileSync(join(root, 'src', 'app.js'), 'export {};\n');
    symlinkSync('/etc/passwd', join(root, 'src', 'passwd'));
    const report = await scanBundle(root);
    expect(report.skipped).toEqual(['.git', 'node_modules']);
    expect(report.findings.map((f) => `${f.rule} ${f.file}`)).toEqual(['bundle.link src/passwd']);
    expect(report.files).toBe(1);
  });

  it('reports a file above the size limit as unscanned instead of reading it', async () => {
    const root = join(dir, 'large');
    mkdirSync(root);
    writeFileSync(join(root, 'big.js'), 'x'.repeat(2048));
    const report = await scanBundle(root, { limits: { maxFileBytes: 1024 } });
    expect(report.findings.map((f) => f.rule)).toEqual(['bundle.unscanned']);
  });

  it('refuses what is neither a folder nor a bundle, naming it', async () => {
    await expect(scanBundle(join(dir, 'missing'))).rejects.toThrow(bundleInvalid);
    await expect(scanBundle(file('notes.txt', 'hello'))).rejects.toThrow(/not a folder, a \.zip or a \.tgz/);
  });
});

/**
 * Fuzzing (issue 16): a bundle is untrusted bytes, so a damaged zip or tar, whatever the damage, is
 * scanned or refused with BUNDLE_INVALID — never another exception, never a hang. Each input is small
 * and the run is bounded in count and time.
 */
describe('damaged archives (fast-check)', () => {
  const zip = zipArchive([
    { name: 'src/app.js', data: 'fetch("/crm/v1/contacts")\n'.repeat(20) },
    { name: 'package.json', data: '{"name":"x","dependencies":{}}' },
  ]);
  const tar = tarArchive([
    { name: 'src/app.js', data: 'export const x = 1;\n'.repeat(20) },
    { name: 'README.md', data: '# app\n' },
  ]);
  const damage = (whole: Buffer) =>
    fc.oneof(
      fc.nat({ max: whole.length - 1 }).map((cut) => whole.subarray(0, cut)),
      fc
        .array(fc.tuple(fc.nat({ max: whole.length - 1 }), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        })
        .map((edits) => {
          const copy = Buffer.from(whole);
          for (const [at, byte] of edits) copy[at] = byte;
          return copy;
        }),
    );
  const scannedOrRefused = async (bytes: Buffer, name: string) => {
    try {
      await scanBundle(file(name, bytes));
    } catch (error) {
      expect(error).toMatchObject({ code: 'BUNDLE_INVALID' });
    }
  };
  const bounds = { numRuns: 60, interruptAfterTimeLimit: 20_000 };

  it('a zip with bytes changed or cut off', async () => {
    await fc.assert(
      fc.asyncProperty(damage(zip), (bytes) => scannedOrRefused(bytes, 'fuzz.zip')),
      bounds,
    );
  });

  it('a tar and a tgz with bytes changed or cut off', async () => {
    await fc.assert(
      fc.asyncProperty(damage(tar), (bytes) => scannedOrRefused(bytes, 'fuzz.tar')),
      bounds,
    );
    await fc.assert(
      fc.asyncProperty(damage(gzipSync(tar)), (bytes) => scannedOrRefused(bytes, 'fuzz.tgz')),
      bounds,
    );
  });
});
