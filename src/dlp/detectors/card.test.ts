import { describe, expect, it } from 'vitest';
import { scanText, type Finding } from '../index.js';

const cards = (text: string, minConfidence?: number): Finding[] =>
  scanText(text, { kinds: ['payment_card'], ...(minConfidence === undefined ? {} : { minConfidence }) });
const spans = (text: string, found: Finding[]): string[] => found.map((f) => text.slice(f.start, f.end));

describe('payment card detector', () => {
  it('catches the Visa, Mastercard and Amex test numbers in their usual groupings', () => {
    const text = 'Visa 4111 1111 1111 1111, MC 5500-0000-0000-0004, Amex 3400 0000 0000 009.';
    const found = cards(text);
    expect(spans(text, found)).toEqual(['4111 1111 1111 1111', '5500-0000-0000-0004', '3400 0000 0000 009']);
    expect(found.map((f) => f.detector)).toEqual([
      'payment_card.visa',
      'payment_card.mastercard',
      'payment_card.amex',
    ]);
  });

  it('catches a card written without separators and in Amex 4-6-5 grouping', () => {
    expect(spans('4111111111111111', cards('4111111111111111'))).toEqual(['4111111111111111']);
    expect(cards('pay with 3400 000000 00009 please')).toHaveLength(1);
  });

  it('does not catch Luhn-invalid variants of the test numbers', () => {
    expect(cards('4111 1111 1111 1112 and 5500 0000 0000 0005 and 3400 0000 0000 008', 0)).toEqual([]);
  });

  it('does not catch a Luhn-valid number outside every issuer range', () => {
    // 1111 1111 1111 1117 passes Luhn but no network issues cards starting with 1.
    expect(cards('ref 1111 1111 1111 1117', 0)).toEqual([]);
  });

  it('does not catch a Luhn-valid number of a length the network does not issue', () => {
    // Amex numbers are 15 digits; 16 digits starting 34 with a valid check digit is not one.
    expect(cards('3400 0000 0000 0000', 0)).toEqual([]);
  });

  it('does not catch digits glued to letters (part of an identifier)', () => {
    expect(cards('order-id=X4111111111111111Y')).toEqual([]);
  });

  it('raises confidence when a word like "card" is nearby', () => {
    const [bare] = cards('ref 4111 1111 1111 1111');
    const [near] = cards('credit card: 4111 1111 1111 1111');
    expect(near!.confidence).toBeGreaterThan(bare!.confidence);
  });

  it('gives less confidence to an unusual grouping, still above the default threshold', () => {
    const [usual] = cards('4111 1111 1111 1111');
    const [odd] = cards('4111 11 111111 1111');
    expect(odd!.confidence).toBeLessThan(usual!.confidence);
    expect(odd!.confidence).toBeGreaterThanOrEqual(0.5);
  });

  it('finds a card inside a longer run of numbers (a card followed by its expiry)', () => {
    const text = 'card 4111 1111 1111 1111 1227';
    expect(spans(text, cards(text))).toEqual(['4111 1111 1111 1111']);
  });
});
