import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatVerifierKey,
  keyIdOf,
  openCheckpoint,
  parseVerifierKey,
  signCheckpoint,
  signerFromSeed,
  type Checkpoint,
} from './checkpoint.js';
import * as tlog from '../../test/support/tlog.js';

const origin = 'gatehouse.test/audit';
const seed = Buffer.alloc(32, 7);
const signer = signerFromSeed(origin, seed);
const vkey = formatVerifierKey(origin, signer.publicKey);
const verifier = parseVerifierKey(vkey);
const root = createHash('sha256').update('root').digest();
const checkpoint: Checkpoint = { origin, size: 42, root };
const note = signCheckpoint(checkpoint, signer);

function expectRejected(text: string, code: string, by = verifier) {
  const opened = openCheckpoint(text, by);
  expect(opened.ok).toBe(false);
  if (!opened.ok) expect(opened.code).toBe(code);
}

describe('checkpoint notes (C2SP tlog-checkpoint over signed-note, Ed25519)', () => {
  it('is origin, size, base64 root, a blank line and one signature line', () => {
    const lines = note.split('\n');
    expect(lines.slice(0, 4)).toEqual([origin, '42', root.toString('base64'), '']);
    expect(lines[4]).toMatch(new RegExp(`^\u2014 ${origin.replaceAll('.', '\\.')} [A-Za-z0-9+/]+=*$`));
    expect(Buffer.from(lines[4].split(' ')[2], 'base64')).toHaveLength(4 + 64);
    expect(lines[5]).toBe('');
  });

  it('opens with our verifier and with the reference one in test/support/tlog.ts', () => {
    expect(openCheckpoint(note, verifier)).toEqual({ ok: true, checkpoint });
    expect(tlog.openCheckpoint(note, vkey)).toMatchObject({ origin, size: 42, signed: true });
    expect(tlog.openCheckpoint(note, vkey).root.equals(root)).toBe(true);
  });

  it('key id = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]; verifier key = name+hex id+base64(0x01 ‖ key)', () => {
    const expected = createHash('sha256')
      .update(Buffer.concat([Buffer.from(origin), Buffer.from([0x0a, 0x01]), signer.publicKey]))
      .digest()
      .subarray(0, 4);
    expect(signer.keyId.equals(expected)).toBe(true);
    const [name, id, key] = [
      vkey.slice(0, vkey.indexOf('+')),
      ...vkey.slice(vkey.indexOf('+') + 1).split(/\+(.*)/s),
    ];
    expect(name).toBe(origin);
    expect(id).toBe(expected.toString('hex'));
    expect(Buffer.from(key, 'base64').equals(Buffer.concat([Buffer.from([1]), signer.publicKey]))).toBe(true);
  });

  it('parses the signed-note spec example key (golang.org/x/mod/sumdb/note) and checks its key id', () => {
    const example = parseVerifierKey('PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW');
    expect(example.name).toBe('PeterNeumann');
    expect(example.keyId.toString('hex')).toBe('c74f20a3');
    const text =
      "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const signature = Buffer.from(
      'x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=',
      'base64',
    );
    expect(signature.subarray(0, 4).equals(example.keyId)).toBe(true);
    expect(example.verify(Buffer.from(text), signature.subarray(4))).toBe(true);
  });

  it('reads a verifier key whose base64 contains "+" (split at the first two "+" only)', () => {
    let found: string | undefined;
    for (let i = 0; i < 200 && !found; i++) {
      const s = signerFromSeed(origin, randomBytes(32));
      const key = formatVerifierKey(origin, s.publicKey);
      if (key.split('+').length > 3) found = key;
    }
    expect(found).toBeDefined();
    expect(parseVerifierKey(found as string).name).toBe(origin);
  });

  it('a malformed verifier key is an InputError', () => {
    for (const bad of [
      '',
      'name',
      'name+zz+AAAA',
      `${origin}+00000000+${vkey.split('+').slice(2).join('+')}`,
    ]) {
      expect(() => parseVerifierKey(bad)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    }
  });
});

describe('hostile checkpoints are rejected', () => {
  it('a forged signature (another key under the same name)', () => {
    const mallory = signerFromSeed(origin, Buffer.alloc(32, 9));
    expectRejected(signCheckpoint(checkpoint, mallory), 'CHECKPOINT_SIGNATURE_INVALID');
    expect(tlog.openCheckpoint(signCheckpoint(checkpoint, mallory), vkey).signed).toBe(false);
  });

  it('a forged signature carrying our key id', () => {
    const mallory = signerFromSeed(origin, Buffer.alloc(32, 9));
    const forged = signCheckpoint(checkpoint, { ...mallory, keyId: signer.keyId });
    expectRejected(forged, 'CHECKPOINT_SIGNATURE_INVALID');
  });

  it('a body changed after signing (size rolled back)', () => {
    expectRejected(note.replace('\n42\n', '\n41\n'), 'CHECKPOINT_SIGNATURE_INVALID');
  });

  it('a checkpoint of another log signed by the same key (origin is not the key name)', () => {
    const other = signerFromSeed('other.log', seed);
    expectRejected(
      signCheckpoint({ ...checkpoint, origin: 'other.log' }, other),
      'CHECKPOINT_ORIGIN_MISMATCH',
    );
  });

  it('a size with a leading zero, a sign or an exponent (one checkpoint, one encoding)', () => {
    for (const size of ['042', '+42', '4.2e1', '-1', '99999999999999999999']) {
      expectRejected(note.replace('\n42\n', `\n${size}\n`), 'CHECKPOINT_MALFORMED');
    }
  });

  it('a root hash that is not base64 of 32 bytes', () => {
    expectRejected(
      note.replace(root.toString('base64'), Buffer.alloc(31).toString('base64')),
      'CHECKPOINT_MALFORMED',
    );
  });

  it('a note without the blank line, without a final newline, or without signatures', () => {
    expectRejected(note.replace('\n\n', '\n'), 'CHECKPOINT_MALFORMED');
    expectRejected(note.slice(0, -1), 'CHECKPOINT_MALFORMED');
    expectRejected(note.slice(0, note.indexOf('\n\n') + 2), 'CHECKPOINT_MALFORMED');
  });

  it('a signature whose base64 is not canonical (unused low bits set in its last character)', () => {
    const [text, line] = [note.slice(0, note.lastIndexOf('\n\n') + 2), note.split('\n').at(-2) as string];
    const last = line.at(-2) as string;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const sibling = alphabet[alphabet.indexOf(last) ^ 1];
    const respelled = `${text}${line.slice(0, -2)}${sibling}=\n`;
    expect(Buffer.from(respelled.split(' ').at(-1) as string, 'base64')).toEqual(
      Buffer.from(line.split(' ').at(-1) as string, 'base64'),
    );
    expectRejected(respelled, 'CHECKPOINT_MALFORMED');
  });

  it('a signature line that is not "— name base64"', () => {
    expectRejected(note.replace('\u2014', '-'), 'CHECKPOINT_MALFORMED');
    expectRejected(`${note.slice(0, -1)}!\n`, 'CHECKPOINT_MALFORMED');
  });

  it('an oversized note (bounded before any parsing)', () => {
    expectRejected(
      `${origin}\n42\n${root.toString('base64')}\n${'x\n'.repeat(40_000)}\n— a AAAAAAAA\n`,
      'CHECKPOINT_MALFORMED',
    );
  });

  it('accepts a cosigned note when our signature is among others', () => {
    const witness = signerFromSeed('witness.example', Buffer.alloc(32, 3));
    const sig = witness.sign(Buffer.from(note.slice(0, note.indexOf('\n\n') + 1)));
    const cosigned = `${note}\u2014 witness.example ${Buffer.concat([witness.keyId, sig]).toString('base64')}\n`;
    expect(openCheckpoint(cosigned, verifier).ok).toBe(true);
  });

  it('ignores a key id that collides on name but not on key', () => {
    expect(keyIdOf(origin, signer.publicKey).equals(keyIdOf(`${origin}x`, signer.publicKey))).toBe(false);
  });
});

/**
 * Fuzzing (issue 16): a checkpoint and a verifier key come from outside (an evidence bundle, a witness,
 * an operator's paste). Whatever their bytes, opening answers ok or a typed problem and parsing a key
 * answers a verifier or an InputError: never another exception, and only the untouched note opens.
 */
describe('hostile bytes (fast-check)', () => {
  const edited = fc
    .array(fc.tuple(fc.nat({ max: note.length - 1 }), fc.nat({ max: 0x7f }), fc.boolean()), {
      minLength: 1,
      maxLength: 6,
    })
    .map((edits) => {
      let text = note;
      for (const [at, code, insert] of edits) {
        const where = Math.min(at, text.length);
        text = text.slice(0, where) + String.fromCharCode(code) + text.slice(where + (insert ? 0 : 1));
      }
      return text;
    });
  const bounds = { numRuns: 500, interruptAfterTimeLimit: 10_000 };

  it('a note with characters changed or inserted opens only if it is still the signed note', () => {
    fc.assert(
      fc.property(edited, (text) => {
        const opened = openCheckpoint(text, verifier);
        expect(opened.ok).toBe(text === note);
      }),
      bounds,
    );
  });

  it('any text is a typed refusal, never an exception', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 600 }), (text) => {
        expect(openCheckpoint(text, verifier).ok).toBe(false);
      }),
      bounds,
    );
  });

  it('any verifier key text parses or is an InputError', () => {
    const keyLike = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc
        .tuple(fc.string({ maxLength: 40 }), fc.nat({ max: vkey.length }))
        .map(([junk, at]) => vkey.slice(0, at) + junk + vkey.slice(at)),
    );
    fc.assert(
      fc.property(keyLike, (text) => {
        try {
          parseVerifierKey(text);
        } catch (error) {
          expect(error).toMatchObject({ code: 'INVALID_INPUT' });
        }
      }),
      bounds,
    );
  });
});
