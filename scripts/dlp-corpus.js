#!/usr/bin/env node
// Writes test/fixtures/dlp-corpus.jsonl: the labelled corpus the DLP detectors are measured on
// (src/dlp/corpus.test.ts, `npm run bench`). One JSON object a line: { kind, label, text, shape }.
// `label` says whether the text holds a value of `kind`; `shape` names how it was written, so a miss
// can be traced to a form. Positives include the formatting that evaded detection before (issue 15:
// dots, slashes, double and non-breaking spaces, zero-width characters, Unicode dashes, fullwidth and
// Arabic-Indic digits); negatives are the look-alikes a note really holds (timestamps, order and
// invoice numbers, dates, amounts, versions, ids). Deterministic: the same seed writes the same file.
// Usage: node scripts/dlp-corpus.js [--per-kind 300]
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { 'per-kind': { type: 'string', default: '300' } } });
const perKind = Number(values['per-kind']);
const out = fileURLToPath(new URL('../test/fixtures/dlp-corpus.jsonl', import.meta.url));

// mulberry32: small, seeded, good enough to vary samples.
let seed = 0x15b;
function random() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (low, high) => low + Math.floor(random() * (high - low + 1));
const pick = (list) => list[int(0, list.length - 1)];
const digits = (n) => Array.from({ length: n }, () => int(0, 9)).join('');
const pad = (value, n) => String(value).padStart(n, '0');
const letters = (n, alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ') =>
  Array.from({ length: n }, () => pick(alphabet)).join('');

function luhnDigit(partial) {
  let sum = 0;
  for (let i = 0; i < partial.length; i++) {
    let d = Number(partial[partial.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

const cardPrefixes = [
  ['4', 16],
  ['4', 13],
  ['51', 16],
  ['55', 16],
  ['2221', 16],
  ['2720', 16],
  ['34', 15],
  ['37', 15],
  ['6011', 16],
  ['65', 16],
  ['3530', 16],
];
function cardNumber() {
  const [prefix, length] = pick(cardPrefixes);
  const body = prefix + digits(length - prefix.length - 1);
  return body + luhnDigit(body);
}

/** Groups of four (4-6-5 for 15 digits), joined by `separator`. */
function grouped(number, separator) {
  const sizes = number.length === 15 ? [4, 6, 5] : number.length === 13 ? [4, 4, 5] : [4, 4, 4, 4];
  const parts = [];
  let at = 0;
  for (const size of sizes) {
    parts.push(number.slice(at, at + size));
    at += size;
  }
  return parts.join(separator);
}

const scripts = {
  fullwidth: 0xff10,
  arabic_indic: 0x0660,
  devanagari: 0x0966,
  bengali: 0x09e6,
};
const inScript = (text, zero) => text.replace(/\d/g, (d) => String.fromCodePoint(zero + Number(d)));

/** The forms a number is written in: [shape, function of the number's groups]. */
const numberForms = [
  ['plain', (groups) => groups.join('')],
  ['spaces', (groups) => groups.join(' ')],
  ['dashes', (groups) => groups.join('-')],
  ['dots', (groups) => groups.join('.')],
  ['slashes', (groups) => groups.join('/')],
  ['double_spaces', (groups) => groups.join('  ')],
  ['nbsp', (groups) => groups.join('\u00a0')],
  ['zero_width', (groups) => groups.join('\u200b')],
  ['en_dash', (groups) => groups.join('\u2013')],
  ['minus_sign', (groups) => groups.join('\u2212')],
  ['fullwidth', (groups) => inScript(groups.join(' '), scripts.fullwidth)],
  ['arabic_indic', (groups) => inScript(groups.join(''), scripts.arabic_indic)],
  ['devanagari', (groups) => inScript(groups.join('-'), scripts.devanagari)],
  ['zwj_inside', (groups) => groups.map((g) => `${g.slice(0, 2)}\u200d${g.slice(2)}`).join(' ')],
];

const lines = [];
const add = (kind, label, shape, text) => lines.push({ kind, label, shape, text });

// Sentences a CRM note holds around a value.
const around = (value, words) =>
  pick([
    `${words} ${value} for the renewal`,
    `Customer said ${words} is ${value}, call back Tuesday.`,
    `${value}`,
    `Per the form: ${words} ${value}.`,
    `Left voicemail. ${words}: ${value} (verify next call)`,
  ]);
const plainNotes = [
  'Met the buyer, renewal likely in Q3',
  'Follow up after the board meeting',
  'Sent the revised quote',
  'Call went well; next step a demo',
  'Asked for references from two customers',
];

function timestampLike() {
  const y = int(2019, 2027);
  const mo = pad(int(1, 12), 2);
  const d = pad(int(1, 28), 2);
  const h = pad(int(0, 23), 2);
  const mi = pad(int(0, 59), 2);
  const s = pad(int(0, 59), 2);
  return pick([
    [`iso_timestamp`, `${y}-${mo}-${d}T${h}:${mi}:${s}.${digits(3)}Z`],
    [`sql_timestamp`, `${y}-${mo}-${d} ${h}:${mi}:${s}`],
    [`epoch_ms`, `${int(1500000000, 1800000000)}${digits(3)}`],
    [`epoch_s`, `${int(1500000000, 1800000000)}`],
    [`compact_timestamp`, `${y}${mo}${d}${h}${mi}${s}`],
    [`date_slashes`, `${d}/${mo}/${y}`],
    [`date_dots`, `${d}.${mo}.${y}`],
  ]);
}
function orderLike() {
  return pick([
    [`order_number`, `ORD-${int(2019, 2027)}-${pad(int(1, 999999), 6)}`],
    [`invoice_number`, `INV ${digits(4)} ${digits(4)}`],
    [`po_number`, `PO${digits(10)}`],
    [`tracking_number`, `1Z${letters(3)}${digits(3)}${letters(2)}${digits(8)}`],
    [`sku`, `SKU-${digits(3)}-${digits(2)}-${digits(4)}`],
    [`amount`, `$${int(1, 999)},${pad(int(0, 999), 3)}.${pad(int(0, 99), 2)}`],
    [`version`, `v${int(1, 20)}.${int(0, 40)}.${int(0, 99)}`],
    [`ip_address`, `10.${int(0, 255)}.${int(0, 255)}.${int(1, 254)}`],
    [`uuid`, `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`],
    [`ticket`, `case #${digits(6)}`],
  ]);
}
const hex = (n) => Array.from({ length: n }, () => pick('0123456789abcdef')).join('');
const negatives = (kind, extra) => {
  for (let i = 0; i < perKind; i++) {
    const [shape, value] = i % 3 === 0 ? timestampLike() : i % 3 === 1 ? orderLike() : extra(i);
    add(kind, false, shape, around(value, pick(['ref', 'order', 'id', 'timestamp', 'number'])));
  }
};

// payment_card
for (let i = 0; i < perKind; i++) {
  const number = cardNumber();
  const [shape, form] = numberForms[i % numberForms.length];
  add(
    'payment_card',
    true,
    shape,
    around(form(grouped(number, '|').split('|')), pick(['card', 'cc', 'paid with'])),
  );
}
negatives('payment_card', () => {
  const number = cardNumber();
  // One digit changed: the checksum fails, as with most 16-digit numbers that are not cards.
  const last = (Number(number.at(-1)) + int(1, 9)) % 10;
  return pick([
    ['luhn_invalid', grouped(number.slice(0, -1) + last, ' ')],
    ['short_number', digits(12)],
    ['no_issuer', `9${digits(15)}`],
    ['plain_note', pick(plainNotes)],
  ]);
});

// us_ssn
const ssn = () => {
  let area = int(1, 899);
  if (area === 666) area = 667;
  return [pad(area, 3), pad(int(1, 99), 2), pad(int(1, 9999), 4)];
};
const ssnForms = [
  ['dashes', (g) => g.join('-')],
  ['spaces', (g) => g.join(' ')],
  ['dots', (g) => g.join('.')],
  ['mixed_dash_space', (g) => `${g[0]}-${g[1]} ${g[2]}`],
  ['mixed_dot_dash', (g) => `${g[0]}.${g[1]}-${g[2]}`],
  ['slashes', (g) => g.join('/')],
  ['nbsp', (g) => g.join('\u00a0')],
  ['en_dash', (g) => g.join('\u2013')],
  ['zero_width', (g) => g.join('\u200b-')],
  ['fullwidth', (g) => inScript(g.join('-'), scripts.fullwidth)],
  ['arabic_indic', (g) => inScript(g.join('-'), scripts.arabic_indic)],
  ['bare_with_context', (g) => g.join('')],
];
for (let i = 0; i < perKind; i++) {
  const [shape, form] = ssnForms[i % ssnForms.length];
  const words = pick(['SSN', 'social security number', 'SSN#']);
  // Nine bare digits are an SSN only where the note says so.
  const text = shape === 'bare_with_context' ? `${words} ${form(ssn())}` : around(form(ssn()), words);
  add('us_ssn', true, shape, text);
}
negatives('us_ssn', () =>
  pick([
    ['phone_like', `${digits(3)}-${digits(3)}-${digits(4)}`],
    ['zip_plus_4', `${digits(5)}-${digits(4)}`],
    [
      'impossible_area',
      `${pick(['000', '666', `9${digits(2)}`])}-${pad(int(1, 99), 2)}-${pad(int(1, 9999), 4)}`,
    ],
    ['bare_nine_digits', `${int(1, 8)}${digits(8)}`],
    ['part_number', `${digits(3)}-${digits(2)}-${digits(5)}`],
  ]),
);

// uk_nino
const ninoFirst = 'ABCEGHJKLMNOPRSTWXYZ';
const ninoSecond = 'ABCEGHJKLMNPRSTWXYZ';
const unusedPrefixes = new Set(['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ']);
function ninoPrefix() {
  for (;;) {
    const prefix = pick(ninoFirst) + pick(ninoSecond);
    if (!unusedPrefixes.has(prefix)) return prefix;
  }
}
const ninoForms = [
  ['spaced', (p, d, s) => `${p} ${d.slice(0, 2)} ${d.slice(2, 4)} ${d.slice(4)} ${s}`],
  ['compact', (p, d, s) => `${p}${d}${s}`],
  ['nbsp', (p, d, s) => `${p}\u00a0${d.slice(0, 2)}\u00a0${d.slice(2, 4)}\u00a0${d.slice(4)}\u00a0${s}`],
  ['zero_width', (p, d, s) => `${p}\u200b${d}\u200b${s}`],
  ['fullwidth', (p, d, s) => `${p}${inScript(d, scripts.fullwidth)}${s}`],
];
for (let i = 0; i < perKind; i++) {
  const [shape, form] = ninoForms[i % ninoForms.length];
  add(
    'uk_nino',
    true,
    shape,
    around(form(ninoPrefix(), digits(6), pick('ABCD')), pick(['NI number', 'NINO', 'national insurance'])),
  );
}
negatives('uk_nino', () =>
  pick([
    ['invalid_prefix', `${pick(['BG', 'GB', 'NK', 'DQ', 'FU', 'QQ'])}${digits(6)}${pick('ABCD')}`],
    ['postcode', `${pick(['SW1A', 'EC2V', 'M1', 'B33'])} ${int(1, 9)}${letters(2)}`],
    ['flight_number', `${pick(['BA', 'EZ', 'LH'])} ${digits(4)}`],
    ['bad_suffix', `AB${digits(6)}Z`],
  ]),
);

// iban
const ibanCountries = [
  ['DE', () => digits(18)],
  ['GB', () => letters(4) + digits(14)],
  ['NL', () => letters(4) + digits(10)],
  ['FR', () => digits(23)],
  ['ES', () => digits(20)],
];
function ibanCheck(country, bban) {
  const rearranged = `${bban}${country}00`.replace(/[A-Z]/g, (c) => String(c.charCodeAt(0) - 55));
  let remainder = 0;
  for (const ch of rearranged) remainder = (remainder * 10 + Number(ch)) % 97;
  return pad(98 - remainder, 2);
}
function iban() {
  const [country, bban] = pick(ibanCountries);
  const b = bban();
  return `${country}${ibanCheck(country, b)}${b}`;
}
const ibanForms = [
  ['compact', (v) => v],
  ['spaced', (v) => v.replace(/(.{4})(?=.)/g, '$1 ')],
  ['nbsp', (v) => v.replace(/(.{4})(?=.)/g, '$1\u00a0')],
  ['zero_width', (v) => v.replace(/(.{4})(?=.)/g, '$1\u200b')],
  ['lower_case', (v) => v.toLowerCase()],
];
for (let i = 0; i < perKind; i++) {
  const [shape, form] = ibanForms[i % ibanForms.length];
  add('iban', true, shape, around(form(iban()), pick(['IBAN', 'account', 'pay to'])));
}
negatives('iban', () => {
  const value = iban();
  return pick([
    [
      'checksum_invalid',
      value.slice(0, 2) + pad((Number(value.slice(2, 4)) + int(1, 50)) % 100, 2) + value.slice(4),
    ],
    ['product_code', `${letters(2)}${digits(2)}-${letters(4)}-${digits(6)}`],
    ['plain_note', pick(plainNotes)],
  ]);
});

// email
const names = ['jane', 'omar', 'li.wei', 'a.smith', 'j_doe', 'maria+crm', 'k.o-neil'];
const domains = ['acme.example', 'mail.globex.com', 'initech.co.uk', 'example.org', 'sub.dept.umbrella.io'];
for (let i = 0; i < perKind; i++) {
  const address = `${pick(names)}${int(0, 1) ? int(1, 99) : ''}@${pick(domains)}`;
  const [shape, text] = pick([
    ['plain', address],
    ['angle_brackets', `<${address}>`],
    ['mailto', `mailto:${address}`],
    ['upper_case', address.toUpperCase()],
  ]);
  add('email', true, shape, around(text, pick(['email', 'reach her at', 'contact'])));
}
negatives('email', () =>
  pick([
    ['at_in_words', `${pick(names)} at ${pick(domains)}`],
    ['handle', `@${pick(names).replace(/[.+-]/g, '')}`],
    ['retina_asset', `logo@2x.png`],
    ['price_at', `${int(2, 40)} units @ $${int(1, 99)}`],
  ]),
);

// phone
const phoneForms = [
  ['uk_landline', () => `+44 20 7946 ${pad(int(0, 999), 4)}`],
  ['uk_mobile', () => `+44 7700 900${pad(int(0, 999), 3)}`],
  ['uk_national', () => `020 7946 ${pad(int(0, 999), 4)}`],
  [
    'us_intl',
    () => `+1 ${pick(['212', '415', '646', '312', '617'])} ${int(200, 999)} ${pad(int(0, 9999), 4)}`,
  ],
  [
    'us_parens',
    () => `(${pick(['212', '415', '646', '312', '617'])}) ${int(200, 999)}-${pad(int(0, 9999), 4)}`,
  ],
  ['us_dots', () => `${pick(['212', '415', '646', '312', '617'])}.${int(200, 999)}.${pad(int(0, 9999), 4)}`],
  ['nbsp', () => `+44\u00a020\u00a07946\u00a0${pad(int(0, 999), 4)}`],
  [
    'fullwidth',
    () =>
      inScript(`+1 415 ${int(200, 999)} ${pad(int(0, 9999), 4)}`, scripts.fullwidth).replace('\uff0b', '+'),
  ],
];
for (let i = 0; i < perKind; i++) {
  const [shape, form] = phoneForms[i % phoneForms.length];
  add('phone', true, shape, around(form(), pick(['call', 'mobile', 'phone'])));
}
negatives('phone', () =>
  pick([
    ['quantity', `${int(2, 900)} seats`],
    ['year_range', `${int(2019, 2024)}-${int(2025, 2030)}`],
    ['percent', `${int(1, 99)}.${int(0, 9)}%`],
    ['plain_note', pick(plainNotes)],
  ]),
);

// secret
const alnum = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const secretForms = [
  ['aws_access_key', () => `AKIA${letters(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')}`],
  ['github_token', () => `ghp_${letters(36, alnum)}`],
  ['slack_token', () => `xoxb-${digits(12)}-${digits(13)}-${letters(24, alnum)}`],
  ['stripe_key', () => `sk_live_${letters(24, alnum)}`],
  ['google_api_key', () => `AIza${letters(35, alnum)}`],
  ['url_credentials', () => `postgres://app:${letters(16, alnum)}@db.internal:5432/crm`],
];
for (let i = 0; i < perKind; i++) {
  const [shape, form] = secretForms[i % secretForms.length];
  add('secret', true, shape, around(form(), pick(['key', 'token', 'credentials'])));
}
negatives('secret', () =>
  pick([
    ['git_sha', hex(40)],
    ['long_word', 'Pneumonoultramicroscopicsilicovolcanoconiosis'],
    ['url_without_password', `https://crm.example.com/accounts/${digits(6)}`],
    ['plain_note', pick(plainNotes)],
  ]),
);

writeFileSync(out, `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`);
console.log(`wrote ${lines.length} samples to ${out}`);
