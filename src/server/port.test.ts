import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { reservePort } from './gatehouse.js';

const listenOn = (port: number) =>
  new Promise<'listening' | string>((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    server.listen({ host: '127.0.0.1', port }, () => server.close(() => resolve('listening')));
  });

describe('reservePort', () => {
  it('holds the port until released, so nothing started in between can take it', async () => {
    const { port, release } = await reservePort('127.0.0.1');
    await expect(listenOn(port)).resolves.toBe('EADDRINUSE');
    await release();
    await expect(listenOn(port)).resolves.toBe('listening');
    await release();
  });
});
