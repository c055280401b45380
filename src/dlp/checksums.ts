/**
 * True when a string of ASCII digits passes the Luhn (mod 10) check used by payment cards. Anything
 * but digits (spaces included) is not a valid input and returns false.
 */
export function luhnValid(digits: string): boolean {
  if (typeof digits !== 'string') throw new TypeError('digits must be a string');
  if (!/^\d{2,}$/.test(digits)) return false;
  return luhnSum(digits) % 10 === 0;
}

/** The Luhn sum of a string already known to hold only ASCII digits. */
export function luhnSum(digits: string): number {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum;
}

/** IBAN length per country, from the SWIFT IBAN registry. */
// prettier-ignore
export const IBAN_LENGTHS: Readonly<Record<string, number>> = Object.freeze({
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
  FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HN: 28, HR: 21, HU: 28,
  IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20,
  LU: 20, LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28,
  NL: 18, NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24,
  SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26,
  UA: 29, VA: 22, VG: 24, XK: 20, YE: 30,
});

/**
 * True when a string is an IBAN: a registered country, that country's length and ISO 7064 mod-97-10
 * check digits. Spaces are ignored and letters may be in either case.
 */
export function ibanValid(iban: string): boolean {
  if (typeof iban !== 'string') throw new TypeError('iban must be a string');
  if (iban.length > 64) return false;
  const compact = iban.replace(/ /g, '').toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]+$/.test(compact)) return false;
  if (IBAN_LENGTHS[compact.slice(0, 2)] !== compact.length) return false;
  return mod97(compact.slice(4) + compact.slice(0, 4)) === 1;
}

/** Remainder mod 97 of the number formed by replacing each letter with 10..35, digit by digit. */
function mod97(value: string): number {
  let rest = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    rest = c <= 57 ? (rest * 10 + (c - 48)) % 97 : (rest * 100 + (c - 55)) % 97;
  }
  return rest;
}
