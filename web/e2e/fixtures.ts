// What every end-to-end test shares: the dev cluster's URL as baseURL, a
// check that no page logged an error to the console, the axe-core check,
// screenshots at both widths, and an API client with the admin's token.
import AxeBuilder from '@axe-core/playwright';
import { test as base, expect, request, type APIRequestContext, type Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { readState, storage, type E2EState } from './state';

export { expect, storage };

const screens = path.resolve(import.meta.dirname, '..', 'test-results', 'screens');

export const test = base.extend<{ state: E2EState; api: APIRequestContext; allowConsole: RegExp[]; consoleErrors: string[] }>({
  // eslint-disable-next-line no-empty-pattern
  state: async ({}, use) => use(readState()),
  baseURL: async ({}, use) => use(readState().url), // eslint-disable-line no-empty-pattern
  api: async ({ state }, use) => {
    const ctx = await request.newContext({
      baseURL: state.url,
      ignoreHTTPSErrors: true,
      extraHTTPHeaders: { Authorization: `Bearer ${state.token}` },
    });
    await use(ctx);
    await ctx.dispose();
  },
  // Console errors a test expects (the 401 of a refused sign-in): it
  // pushes a pattern here.
  // eslint-disable-next-line no-empty-pattern
  allowConsole: async ({}, use) => use([]),
  // Every test fails if a page logs an error (a CSP violation among them)
  // or throws.
  consoleErrors: [
    async ({ page, allowConsole }, use) => {
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(String(e)));
      // Chromium's message for a failed request names no URL: keep them.
      const failed: string[] = [];
      page.on('response', (r) => {
        if (r.status() >= 400) failed.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
      });
      await use(errors);
      const unexpected = errors.filter((e) => !allowConsole.some((re) => re.test(e)));
      expect(unexpected, `console errors (failed requests: ${failed.join(', ') || 'none'})`).toEqual([]);
    },
    { auto: true },
  ],
});

/** axe finds no serious or critical violation on the page as it is now. */
export async function checkA11y(page: Page, what: string) {
  const res = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']).analyze();
  const bad = res.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
  expect(bad, `axe on ${what}`).toEqual([]);
}

/** shot keeps a full-page screenshot named after the page and the width. */
export async function shot(page: Page, name: string) {
  mkdirSync(screens, { recursive: true });
  const w = page.viewportSize()?.width ?? 0;
  await page.screenshot({ path: path.join(screens, `${name}-${w}.png`), fullPage: true });
}

/** Waits until an app reaches one of the statuses with no operation under way, through the API. */
export async function waitForApp(api: APIRequestContext, id: string, statuses: string[], timeoutMs = 60_000) {
  const end = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < end) {
    const res = await api.get(`/api/v1/apps/${id}`);
    if (res.ok()) {
      const app = await res.json();
      last = app.operation ? `${app.status}, ${app.operation} in progress` : app.status;
      // A restart, an update or a backup runs with the app still running.
      if (statuses.includes(app.status) && !app.operation) return app;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`app ${id} did not reach ${statuses.join('|')} (last ${last})`);
}

/**
 * auditPage checks the page as it is at 1440 and 390 px wide and in the
 * dark theme: axe finds nothing serious, nothing overflows the width, and
 * a screenshot of each is kept. It leaves the page at 1440 px, light.
 */
export async function auditPage(page: Page, name: string) {
  for (const [width, scheme] of [[1440, 'light'], [390, 'light'], [1440, 'dark']] as const) {
    await page.setViewportSize({ width, height: 900 });
    await page.emulateMedia({ colorScheme: scheme });
    await checkA11y(page, `${name} at ${width} px, ${scheme}`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow, `${name} at ${width} px scrolls sideways by ${overflow} px`).toBeLessThanOrEqual(0);
    await shot(page, scheme === 'dark' ? `${name}-dark` : name);
  }
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.emulateMedia({ colorScheme: 'light' });
}
