import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// Gatehouse sends no CORS headers: the app reaches it through this dev server's proxy (the SDK's
// `via`), while tokens and DPoP proofs keep naming Gatehouse's own URL.
const gatehouse = process.env.GATEHOUSE_URL ?? 'http://127.0.0.1:8080';
const proxy = Object.fromEntries(
  ['/oauth/token', '/oauth/revoke', '/.well-known', '/crm'].map((path) => [
    path,
    { target: gatehouse, changeOrigin: true },
  ]),
);

export default defineConfig({
  plugins: [react()],
  define: { __GATEHOUSE_URL__: JSON.stringify(gatehouse) },
  server: { host: 'localhost', port: 5173, strictPort: true, proxy },
});
