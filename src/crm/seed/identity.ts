/**
 * Country-specific identity data for synthetic contacts: phone numbers in E.164 that a phone-number
 * validator accepts for the country, and national identifiers in each country's real format with
 * valid check digits, so DLP detectors meet what they will meet in production.
 *
 * Where a regulator reserves numbers for fiction (Ofcom drama numbers, NANP 555-01XX, ARCEP and ACMA
 * ranges) the phones come from those ranges, so a synthetic record never dials a real person.
 */

export interface Rng {
  /** An integer in [min, max], both inclusive. */
  int(min: number, max: number): number;
}

export type Country = 'GB' | 'DE' | 'FR' | 'US' | 'CA' | 'AU' | 'SG';

const digits = (rng: Rng, n: number): string => {
  let out = '';
  for (let i = 0; i < n; i++) out += String(rng.int(0, 9));
  return out;
};
const pad = (n: number, width: number): string => String(n).padStart(width, '0');
const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.int(0, items.length - 1)] as T;

/** Real area codes; the 555-0100..0199 lines under each are reserved for fiction by the NANPA. */
const usAreaCodes = [
  201, 202, 206, 212, 213, 214, 303, 305, 312, 404, 415, 512, 602, 617, 646, 702, 713, 720, 773, 818,
];
const caAreaCodes = [204, 306, 403, 416, 514, 587, 604, 613, 647, 780, 902, 905];
/** ACMA numbers for use in creative works. */
const auMobiles = [
  '491570006',
  '491570156',
  '491570157',
  '491570158',
  '491570159',
  '491570110',
  '491570313',
  '491570737',
];

export function phoneFor(country: Country, rng: Rng): string {
  switch (country) {
    case 'GB':
      // Ofcom drama ranges: 07700 900000–900999 and 020 7946 0000–0999.
      return rng.int(0, 1) === 0
        ? `+447700900${pad(rng.int(0, 999), 3)}`
        : `+44207946${pad(rng.int(0, 999), 4)}`;
    case 'DE': {
      const mobile = pick(rng, ['151', '160', '170', '171', '176']);
      return rng.int(0, 1) === 0 ? `+49${mobile}${digits(rng, 8)}` : `+4930${rng.int(2, 9)}${digits(rng, 7)}`;
    }
    case 'FR':
      // ARCEP numbers reserved for audiovisual works.
      return rng.int(0, 1) === 0 ? `+336399800${digits(rng, 2)}` : `+33199000${digits(rng, 3)}`;
    case 'US':
      return `+1${pick(rng, usAreaCodes)}55501${digits(rng, 2)}`;
    case 'CA':
      return `+1${pick(rng, caAreaCodes)}55501${digits(rng, 2)}`;
    case 'AU':
      // ACMA fiction ranges: (02) 5550 xxxx, (03) 7010 xxxx, (07) 5550 xxxx, (08) 5550 xxxx, and a few mobiles.
      switch (rng.int(0, 4)) {
        case 0:
          return `+61${pick(rng, auMobiles)}`;
        case 1:
          return `+6137010${digits(rng, 4)}`;
        default:
          return `+61${pick(rng, ['2', '7', '8'])}5550${digits(rng, 4)}`;
      }
    case 'SG':
      return `+65${pick(rng, ['6', '8', '9'])}${digits(rng, 7)}`;
  }
}

export interface Person {
  sex: 'female' | 'male';
  /** YYYY-MM-DD */
  dateOfBirth: string;
}

export function nationalIdFor(country: Country, person: Person, rng: Rng): string {
  switch (country) {
    case 'US':
      return ssn(rng);
    case 'CA':
      return sin(rng);
    case 'GB':
      return nino(rng);
    case 'DE':
      return steuerId(rng);
    case 'FR':
      return nir(person, rng);
    case 'AU':
      return tfn(rng);
    case 'SG':
      return nric(person, rng);
  }
}

/** US SSN: area 001–899 but not 666, group 01–99, serial 0001–9999. */
function ssn(rng: Rng): string {
  let area = rng.int(1, 898);
  if (area >= 666) area += 1;
  return `${pad(area, 3)}-${pad(rng.int(1, 99), 2)}-${pad(rng.int(1, 9999), 4)}`;
}

/** Canadian SIN: nine digits passing Luhn, first digit 1–7 (a province), shown as 3-3-3. */
function sin(rng: Rng): string {
  const body = String(rng.int(1, 7)) + digits(rng, 7);
  const all = body + luhnCheckDigit(body);
  return `${all.slice(0, 3)} ${all.slice(3, 6)} ${all.slice(6)}`;
}

export function luhnCheckDigit(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

const ninoFirst = [...'ABCEGHJKLMNOPRSTWXYZ'];
const ninoSecond = [...'ABCEGHJKLMNPRSTWXYZ'];
const ninoSuffix = ['A', 'B', 'C', 'D'];
const ninoBanned = new Set(['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ']);

/** UK National Insurance number: two allowed prefix letters, six digits, suffix A–D. */
function nino(rng: Rng): string {
  let prefix: string;
  do prefix = pick(rng, ninoFirst) + pick(rng, ninoSecond);
  while (ninoBanned.has(prefix));
  return `${prefix}${digits(rng, 6)}${pick(rng, ninoSuffix)}`;
}

/**
 * German tax id (Steuerliche Identifikationsnummer): 11 digits, no leading zero, in the first ten one
 * digit occurs twice and one not at all, check digit by ISO 7064 MOD 11,10.
 */
function steuerId(rng: Rng): string {
  const pool = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const missing = rng.int(0, 9);
  const present = pool.filter((d) => d !== missing);
  const doubled = pick(rng, present);
  const ten = [...present, doubled];
  for (let i = ten.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [ten[i], ten[j]] = [ten[j] as number, ten[i] as number];
  }
  if (ten[0] === 0) {
    const k = ten.findIndex((d) => d !== 0);
    [ten[0], ten[k]] = [ten[k] as number, 0];
  }
  const body = ten.join('');
  return body + iso7064Mod11_10(body);
}

export function iso7064Mod11_10(body: string): string {
  let product = 10;
  for (const ch of body) {
    let sum = (Number(ch) + product) % 10;
    if (sum === 0) sum = 10;
    product = (sum * 2) % 11;
  }
  const check = 11 - product;
  return String(check === 10 ? 0 : check);
}

/** French NIR (numéro de sécurité sociale): sex, year and month of birth, département, commune, order, key. */
function nir(person: Person, rng: Rng): string {
  const sex = person.sex === 'male' ? '1' : '2';
  const [year, month] = person.dateOfBirth.split('-') as [string, string];
  let dept = rng.int(1, 95);
  if (dept === 20) dept = 75; // Corsica uses 2A/2B, not 20.
  const body = `${sex}${year.slice(2)}${month}${pad(dept, 2)}${pad(rng.int(1, 999), 3)}${pad(rng.int(1, 999), 3)}`;
  return body + pad(97 - Number(BigInt(body) % 97n), 2);
}

const tfnWeights = [1, 4, 3, 7, 5, 8, 6, 9, 10];

/** Australian Tax File Number: nine digits whose weighted sum is divisible by 11, shown as 3-3-3. */
function tfn(rng: Rng): string {
  for (;;) {
    const body = digits(rng, 8);
    let sum = 0;
    for (let i = 0; i < 8; i++) sum += Number(body[i]) * (tfnWeights[i] as number);
    // The last weight is 10 ≡ -1 (mod 11), so the last digit must equal the sum mod 11.
    const last = sum % 11;
    if (last === 10 || (body === '00000000' && last === 0)) continue;
    const all = body + String(last);
    return `${all.slice(0, 3)} ${all.slice(3, 6)} ${all.slice(6)}`;
  }
}

export function tfnValid(tfnText: string): boolean {
  const d = tfnText.replaceAll(' ', '');
  if (!/^\d{9}$/.test(d)) return false;
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += Number(d[i]) * (tfnWeights[i] as number);
  return sum % 11 === 0;
}

const nricWeights = [2, 7, 6, 5, 4, 3, 2];

/** Singapore NRIC: S (born before 2000) or T, seven digits led by the birth year for those born 1968 on, check letter. */
function nric(person: Person, rng: Rng): string {
  const year = Number(person.dateOfBirth.slice(0, 4));
  const prefix = year >= 2000 ? 'T' : 'S';
  const body = year >= 1968 ? String(year).slice(2) + digits(rng, 5) : pick(rng, ['0', '1']) + digits(rng, 6);
  return prefix + body + nricCheckLetter(prefix, body);
}

export function nricCheckLetter(prefix: 'S' | 'T', body: string): string {
  let sum = prefix === 'T' ? 4 : 0;
  for (let i = 0; i < 7; i++) sum += Number(body[i]) * (nricWeights[i] as number);
  return 'JZIHGFEDCBA'[sum % 11] as string;
}
