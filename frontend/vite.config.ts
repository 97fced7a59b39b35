/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { VitePWA } from 'vite-plugin-pwa';

// Where a running Assay listens during `npm run dev` (override with ASSAY_DEV_API).
const api = process.env.ASSAY_DEV_API ?? 'http://127.0.0.1:8000';

// Assay checks the Origin of unsafe cookie requests against its public_url. Through the
// dev proxy the browser's Origin is Vite's, so rewrite it to the API's own origin.
const proxied = {
  target: api,
  changeOrigin: true,
  configure: (proxy: {
    on: (
      event: 'proxyReq',
      cb: (req: {
        setHeader: (k: string, v: string) => void;
        getHeader: (k: string) => unknown;
      }) => void,
    ) => void;
  }) => {
    proxy.on('proxyReq', (req) => {
      if (req.getHeader('origin')) req.setHeader('origin', new URL(api).origin);
    });
  },
};

// Assay's Content-Security-Policy, exactly: `npm run preview` serves the build under it,
// so a violation shows in the browser console before the Python side serves the files.
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; " +
  "form-action 'self'; frame-ancestors 'none'";

const proxy = {
  '/v1': proxied,
  '/openapi.json': proxied,
  '/healthz': proxied,
  '/readyz': proxied,
};

export default defineConfig({
  base: '/console/',
  plugins: [
    react(),
    VitePWA({
      // Registration comes from a file (registerSW.js), never an inline script: strict CSP.
      injectRegister: 'script',
      registerType: 'autoUpdate',
      includeAssets: ['favicon.svg', 'offline.html', 'offline.css'],
      manifest: {
        name: 'Assay console',
        short_name: 'Assay',
        description: 'Score records, read models and their explanations.',
        start_url: '/console/',
        scope: '/console/',
        display: 'standalone',
        background_color: '#ffffff',
        theme_color: '#1d4ed8',
        icons: [
          { src: 'icon-192.png', sizes: '192x192', type: 'image/png' },
          { src: 'icon-512.png', sizes: '512x512', type: 'image/png' },
          { src: 'icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
        ],
      },
      workbox: {
        // The shell is precached; navigations are answered from the network first and
        // fall back to the offline page. API answers are never cached (no-store).
        navigateFallback: null,
        globPatterns: ['**/*.{js,css,html,svg,png,webmanifest}'],
        runtimeCaching: [
          {
            urlPattern: ({ request, url }) =>
              request.mode === 'navigate' && url.pathname.startsWith('/console/'),
            handler: 'NetworkOnly',
            options: {
              precacheFallback: { fallbackURL: '/console/offline.html' },
            },
          },
        ],
      },
    }),
  ],
  build: {
    outDir: '../src/assay/console/static',
    emptyOutDir: true,
    // The polyfill would be an inline script; every browser we support has modulepreload.
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 900,
  },
  server: { proxy },
  preview: { proxy, headers: { 'Content-Security-Policy': CSP } },
  test: {
    environment: 'jsdom',
    globals: true,
    setupFiles: ['./src/test/setup.ts'],
    css: false,
  },
});
