import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// Served by Gatehouse at /console/ (src/console), same origin as the API: no proxy, no CORS.
const gatehouse = process.env.GATEHOUSE_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  base: '/console/',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1500 },
  server: {
    host: '127.0.0.1',
    port: 5180,
    proxy: Object.fromEntries(
      ['/oauth', '/.well-known', '/admin', '/audit'].map((path) => [path, { target: gatehouse }]),
    ),
  },
});
