import { describe, expect, it, vi } from 'vitest';
import { InputError, NotFound } from '../errors/index.js';
import { CircuitOpen, createLimits, defaultLimitsConfig, type Limits } from './index.js';

const start = Date.UTC(2025, 0, 6, 10, 0, 0);

function setup() {
  const clock = { t: start };
  const limits = createLimits(
    { ...defaultLimitsConfig, breaker: { failureThreshold: 3, openSeconds: 30 } },
    { now: () => clock.t },
  );
  return { clock, limits };
}

const down = () => Promise.reject(new Error('ECONNRESET'));

async function trip(limits: Limits, connector = 'salesforce') {
  for (let i = 0; i < 3; i += 1)
    await expect(limits.breaker(connector).run(down)).rejects.toThrow('ECONNRESET');
}

describe('circuit breaker', () => {
  it('passes results and errors through while closed', async () => {
    const { limits } = setup();
    expect(await limits.breaker('salesforce').run(() => Promise.resolve(42))).toBe(42);
    await expect(limits.breaker('salesforce').run(down)).rejects.toThrow('ECONNRESET');
    expect(limits.breaker('salesforce').state).toBe('closed');
  });

  it('opens after the threshold of consecutive failures and fails fast without calling the connector', async () => {
    const { limits } = setup();
    await trip(limits);
    const breaker = limits.breaker('salesforce');
    expect(breaker.state).toBe('open');
    const fn = vi.fn(() => Promise.resolve('never'));
    const error = await breaker.run(fn).catch((e: unknown) => e);
    expect(fn).not.toHaveBeenCalled();
    expect(error).toBeInstanceOf(CircuitOpen);
    expect(error).toMatchObject({
      code: 'CIRCUIT_OPEN',
      status: 503,
      retryAfterSeconds: 30,
    });
    expect((error as CircuitOpen).extensions).toEqual({ connector: 'salesforce' });
  });

  it('counts consecutive failures only: a success in between starts the count again', async () => {
    const { limits } = setup();
    const breaker = limits.breaker('salesforce');
    for (let i = 0; i < 10; i += 1) {
      await expect(breaker.run(down)).rejects.toThrow();
      await expect(breaker.run(down)).rejects.toThrow();
      await breaker.run(() => Promise.resolve(1));
    }
    expect(breaker.state).toBe('closed');
  });

  it('half-opens after openSeconds, lets one trial through and closes when it succeeds', async () => {
    const { clock, limits } = setup();
    await trip(limits);
    const breaker = limits.breaker('salesforce');
    clock.t += 29_500;
    await expect(breaker.run(() => Promise.resolve(1))).rejects.toMatchObject({ retryAfterSeconds: 1 });
    clock.t = start + 30_000;
    expect(breaker.state).toBe('half-open');

    let finish!: (value: string) => void;
    const trial = breaker.run(() => new Promise<string>((resolve) => (finish = resolve)));
    const other = vi.fn(() => Promise.resolve('second'));
    await expect(breaker.run(other)).rejects.toBeInstanceOf(CircuitOpen);
    expect(other).not.toHaveBeenCalled();
    finish('first');
    expect(await trial).toBe('first');
    expect(breaker.state).toBe('closed');
    expect(await breaker.run(other)).toBe('second');
  });

  it('opens again for openSeconds when the trial fails', async () => {
    const { clock, limits } = setup();
    await trip(limits);
    clock.t += 30_000;
    await expect(limits.breaker('salesforce').run(down)).rejects.toThrow('ECONNRESET');
    expect(limits.breaker('salesforce').state).toBe('open');
    clock.t += 10_000;
    await expect(limits.breaker('salesforce').run(down)).rejects.toMatchObject({ retryAfterSeconds: 20 });
  });

  it('does not count answers of a working CRM (not found, bad input) as failures', async () => {
    const { limits } = setup();
    const breaker = limits.breaker('salesforce');
    for (let i = 0; i < 5; i += 1) {
      await expect(breaker.run(() => Promise.reject(new NotFound()))).rejects.toBeInstanceOf(NotFound);
      await expect(breaker.run(() => Promise.reject(new InputError('bad')))).rejects.toBeInstanceOf(
        InputError,
      );
    }
    expect(breaker.state).toBe('closed');
  });

  it('counts a connector that throws synchronously as failing', async () => {
    const { limits } = setup();
    const throws = () => {
      throw new Error('boom');
    };
    for (let i = 0; i < 3; i += 1)
      await expect(limits.breaker('hubspot').run(throws)).rejects.toThrow('boom');
    expect(limits.breaker('hubspot').state).toBe('open');
  });

  it('ignores the late outcome of a call that started before the circuit opened', async () => {
    const { limits } = setup();
    const breaker = limits.breaker('salesforce');
    let finish!: (value: string) => void;
    const slow = breaker.run(() => new Promise<string>((resolve) => (finish = resolve)));
    await trip(limits);
    finish('late');
    expect(await slow).toBe('late');
    expect(breaker.state).toBe('open');
  });

  it('keeps one breaker per connector', async () => {
    const { limits } = setup();
    expect(limits.breaker('salesforce')).toBe(limits.breaker('salesforce'));
    await trip(limits, 'salesforce');
    expect(limits.breaker('embedded').state).toBe('closed');
    expect(await limits.breaker('embedded').run(() => Promise.resolve('ok'))).toBe('ok');
    expect(() => limits.breaker('')).toThrow(TypeError);
  });
});
