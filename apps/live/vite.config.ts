import { resolve } from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// One app, three pages (each its own entry and bundle): the screens share the kit's set-up, the
// typed documents and the session hooks, and one build serves all three from one origin.
export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    rollupOptions: {
      input: {
        index: resolve(import.meta.dirname, 'index.html'),
        audience: resolve(import.meta.dirname, 'audience.html'),
        screen: resolve(import.meta.dirname, 'screen.html'),
        console: resolve(import.meta.dirname, 'console.html'),
      },
    },
  },
});
