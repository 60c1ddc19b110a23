import { defineConfig } from '@playwright/test';
import base from './playwright.config';

// make ui-audit: Lighthouse against the same dev cluster the browser tests
// use (e2e/global-setup.ts), one page after another.
export default defineConfig({
  ...base,
  testDir: 'audit',
  timeout: 240_000,
  workers: 1,
});
