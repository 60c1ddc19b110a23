import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// The dashboard is built into coordinator/webui/dist and embedded into
// proximity-coordinator (coordinator/webui). Nothing is loaded from another
// origin.
export default defineConfig({
  plugins: [svelte()],
  build: {
    outDir: '../coordinator/webui/dist',
    // dist/.gitkeep stays: scripts/clean.mjs empties the rest first.
    emptyOutDir: false,
    assetsInlineLimit: 0,
    target: 'es2022',
    sourcemap: false,
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.ts'],
    setupFiles: ['src/test-setup.ts'],
  },
  resolve: process.env.VITEST ? { conditions: ['browser'] } : undefined,
});
