// Builds the viewer into ui/static/viewer/ (served at /static/viewer/). The entry keeps a stable
// name, viewer.js (and viewer.css), so ui/templates/case.html can reference it; the decode worker
// and the codecs' .wasm files (resolved by Vite from the loader's `new URL(..., import.meta.url)`)
// go to assets/ with hashed names.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/static/viewer/',
  publicDir: false,
  worker: { format: 'es' },
  build: {
    outDir: fileURLToPath(new URL('../static/viewer', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 8000,
    rollupOptions: {
      input: fileURLToPath(new URL('src/main.js', import.meta.url)),
      output: {
        entryFileNames: 'viewer.js',
        chunkFileNames: 'chunks/[name]-[hash].js',
        assetFileNames: (asset) =>
          (asset.names ?? [asset.name]).some((name) => name?.endsWith('.css')) ? 'viewer.css' : 'assets/[name]-[hash][extname]',
      },
    },
  },
});
