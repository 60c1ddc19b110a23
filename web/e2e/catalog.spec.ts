import type { APIRequestContext, Page } from '@playwright/test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { auditPage, checkA11y, expect, shot, storage, test, waitForApp } from './fixtures';

// The catalog and an entry's page: search, the category filter in the URL,
// the deploy form's checks (the form's and the API's), a deploy followed to
// running with its Open link, and a deploy made with the keyboard alone.

const run = `${Date.now().toString(36).slice(-4)}${Math.floor(Math.random() * 1e4)}`;

/** The apps a test made, deleted after it through the API. */
let made: string[] = [];

async function cleanup(api: APIRequestContext) {
  for (const id of made) await api.delete(`/api/v1/apps/${id}`);
  made = [];
}

/** The cards' names, in order. */
async function cardNames(page: Page): Promise<string[]> {
  return page.locator('li.entry h2 a').allInnerTexts();
}

test.describe('as an admin', () => {
  test.use({ storageState: storage.admin });
  test.afterEach(async ({ api }) => cleanup(api));

  test('search and the category filter, kept in the URL', async ({ page, api }) => {
    // Other tests add catalog sources for a while: the counts here are of
    // the builtin source's entries, which stay as they are.
    const builtin = page.locator('li.entry').filter({ has: page.locator('.badge', { hasText: /^built-in$/ }) });
    await page.goto('/catalog');
    const all = await (await api.get('/api/v1/catalog?per_page=100&source=builtin')).json();
    await expect(builtin).toHaveCount(all.items.length);
    // Every card: its icon with a size, and its source.
    const first = page.locator('li.entry').first();
    await expect(first.locator('img')).toHaveAttribute('width', '48');
    await expect(first.locator('img')).toHaveAttribute('height', '48');
    await expect(first.locator('img')).toHaveAttribute('src', all.items[0].icon);
    await expect(first.getByText('built-in')).toBeVisible();
    await auditPage(page, 'catalog');

    await page.getByLabel('Search').fill('vault');
    await expect(page).toHaveURL(/[?&]q=vault/);
    const found = await (await api.get('/api/v1/catalog?q=vault')).json();
    await expect.poll(() => cardNames(page)).toEqual(found.items.map((e: { name: string }) => e.name));
    expect(found.items.map((e: { id: string }) => e.id)).toContain('vaultwarden');
    await expect(page.getByRole('link', { name: 'Vaultwarden', exact: true })).toHaveAttribute('href', '/catalog/vaultwarden');

    // The category: only its entries, as many as the API counts.
    await page.getByLabel('Search').fill('');
    await expect(page).not.toHaveURL(/q=/);
    const cats = (await (await api.get('/api/v1/catalog/categories?source=builtin')).json()).items as { name: string; count: number }[];
    const media = cats.find((c) => c.name === 'media')!;
    expect(media.count).toBeGreaterThan(1);
    await page.getByLabel('Category').selectOption('media');
    await expect(page).toHaveURL(/[?&]category=media/);
    await expect(builtin).toHaveCount(media.count);
    for (const badge of await page.locator('li.entry .tags .badge:first-child').allInnerTexts()) expect(badge).toBe('media');
    // A reload keeps the filter.
    await page.reload();
    await expect(page.getByLabel('Category')).toHaveValue('media');
    await expect(builtin).toHaveCount(media.count);

    // Nothing matches: the empty state, and the way back.
    await page.getByLabel('Search').fill(`nothing-like-this-${run}`);
    await expect(page.getByRole('heading', { name: 'No apps found' })).toBeVisible();
    await page.getByRole('button', { name: 'Clear the search' }).click();
    await expect(builtin).toHaveCount(all.items.length);
    await expect(page.getByLabel('Category')).toHaveValue('');
  });

  test("another source's entry: its badge, its two-segment path, its page", async ({ page, api }) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'proximity-e2e-src-'));
    const source = `e2e-cat-${run}`;
    const name = `Notes ${run}`;
    const starter = readFileSync(path.resolve(import.meta.dirname, '../../internal/catalog/starter/memos.yaml'), 'utf8');
    writeFileSync(path.join(dir, 'notes.yaml'), starter.replace(/^id: memos$/m, 'id: notes').replace(/^name: .*$/m, `name: "${name}"`));
    const added = await api.post('/api/v1/catalog/sources', { data: { name: source, url: `dir://${dir}`, format: 'proximity' } });
    expect(added.status(), await added.text()).toBe(201);
    try {
      await page.goto(`/catalog?q=${encodeURIComponent(name)}`);
      const card = page.locator('li.entry');
      await expect(card).toHaveCount(1);
      await expect(card.getByText(`source: ${source}`)).toBeVisible();
      await expect(card.getByText('built-in')).toHaveCount(0);
      const link = card.getByRole('link', { name });
      await expect(link).toHaveAttribute('href', `/catalog/${source}/notes`);
      await link.click();
      await expect(page).toHaveURL(new RegExp(`/catalog/${source}/notes$`));
      await expect(page.getByRole('heading', { level: 1, name })).toBeVisible();
      await expect(page.getByText(`source: ${source}`)).toBeVisible();
      await expect(page.getByLabel('Time zone')).toHaveValue('Etc/UTC');
    } finally {
      await api.delete(`/api/v1/catalog/sources/${source}`);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('deploy Vaultwarden with a setting: the checks, the progress, Open', async ({ page, api, allowConsole }) => {
    const host = `vw-${run}`;
    await page.goto('/catalog?q=vault');
    await page.getByRole('link', { name: 'Vaultwarden', exact: true }).click();
    await expect(page).toHaveURL(/\/catalog\/vaultwarden$/);
    await expect(page.getByRole('heading', { level: 1, name: 'Vaultwarden' })).toBeVisible();
    await expect(page.getByText('version 1.32.7')).toBeVisible();
    await expect(page.getByRole('link', { name: /Website/ })).toHaveAttribute('href', 'https://github.com/dani-garcia/vaultwarden');
    // The form from the entry's settings, with its defaults.
    await expect(page.getByLabel('Domain')).toHaveValue('http://localhost');
    await expect(page.getByLabel('Allow sign-ups')).not.toBeChecked();
    await expect(page.getByText('Generated if left empty.')).toBeVisible();
    await expect(page.getByLabel('Memory (MB)')).toHaveValue('512');
    // An admin may choose the node.
    await expect(page.getByLabel('Node').locator('option')).toHaveCount(4);
    await auditPage(page, 'catalog-entry');

    // The form's own checks: beside the fields, tied to them.
    await page.getByLabel('Hostname').fill('Not_A_Host');
    await page.getByLabel('Allow sign-ups').check();
    await page.getByLabel('Admin token').fill('short');
    await page.getByRole('button', { name: 'Deploy', exact: true }).click();
    const token = page.getByLabel('Admin token');
    await expect(token).toHaveAttribute('aria-invalid', 'true');
    await expect(page.locator('#setting-ADMIN_TOKEN-error')).toHaveText(/at least 16 characters/i);
    expect(await token.getAttribute('aria-describedby')).toContain('setting-ADMIN_TOKEN-error');
    await expect(page.getByLabel('Hostname')).toHaveAttribute('aria-invalid', 'true');
    await expect(page.getByLabel('Hostname')).toBeFocused();
    await checkA11y(page, 'deploy form with errors');

    // The API's 400 goes under the field it names too.
    await page.getByLabel('Hostname').fill(host);
    await page.getByLabel('Admin token').fill('');
    await expect(token).not.toHaveAttribute('aria-invalid', 'true');
    allowConsole.push(/status of 400/);
    await page.route('**/api/v1/apps', (route) =>
      route.request().method() === 'POST'
        ? route.fulfill({
            status: 400,
            contentType: 'application/problem+json',
            body: JSON.stringify({ type: 'urn:proximity:problem:invalid', title: 'Bad Request', status: 400, detail: 'settings.DOMAIN: refused by this test', request_id: 'req_x' }),
          })
        : route.continue(),
    );
    await page.getByRole('button', { name: 'Deploy', exact: true }).click();
    await expect(page.locator('#setting-DOMAIN-error')).toHaveText('refused by this test');
    await expect(page.getByLabel('Domain')).toHaveAttribute('aria-invalid', 'true');
    await expect(page.getByLabel('Domain')).toBeFocused();
    await page.unroute('**/api/v1/apps');

    // A valid deploy opens the app's page, which follows it to running. The
    // simulated nodes deploy in well under a second, so the page's first
    // read of the app is answered as it was at the deploy's first step
    // (what a person sees on a real node for minutes), and its event
    // stream is held until that is checked; the events bring the rest.
    let faked = false;
    await page.route('**/api/v1/apps/app_*', async (route) => {
      if (faked || route.request().method() !== 'GET') return route.continue();
      faked = true;
      const real = await (await route.fetch()).json();
      await route.fulfill({ json: { ...real, status: 'deploying', operation: 'deploy', step: 'create' } });
    });
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    await page.route('**/api/v1/events', async (route) => {
      await held;
      await route.continue();
    });
    await page.getByRole('button', { name: 'Deploy', exact: true }).click();
    await expect(page).toHaveURL(/\/apps\/app_[0-9a-f]+$/);
    const id = new URL(page.url()).pathname.split('/').pop()!;
    made.push(id);
    const progress = page.locator('section.progress');
    await expect(progress.getByRole('heading', { name: `Deploying ${host}` })).toBeVisible();
    await expect(progress.locator('[aria-live="polite"] li[aria-current="step"]')).toHaveText(/Create the container/);
    await expect(progress.locator('li.pending')).toHaveCount(7);
    await expect(progress.getByRole('button', { name: 'Cancel' })).toBeVisible();
    await shot(page, 'deploy-progress');
    const stream = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/events');
    release();
    await stream;

    const app = await waitForApp(api, id, ['running', 'error']);
    expect(app.status).toBe('running');
    expect(app.hostname).toBe(host);
    expect(app.settings.SIGNUPS_ALLOWED).toBe('true');
    expect(app.secret_settings).toContain('ADMIN_TOKEN');
    const main = app.urls.find((u: { main: boolean }) => u.main).url;
    // Whenever the deploy ended, a restart sends the app's events again,
    // up to running.
    const restart = await api.post(`/api/v1/apps/${id}/actions`, { data: { action: 'restart' } });
    expect(restart.status(), await restart.text()).toBe(202);
    await expect(progress.getByRole('heading', { name: `Deploying ${host}` })).toHaveCount(0);
    const open = page.getByRole('link', { name: 'Open', exact: true });
    await expect(open.first()).toBeVisible();
    for (const a of await open.all()) {
      await expect(a).toHaveAttribute('href', main);
      await expect(a).toHaveAttribute('target', '_blank');
    }

    // The same hostname again: the API's 409, above the button.
    allowConsole.push(/status of 409/);
    await page.goto('/catalog/vaultwarden');
    await page.getByLabel('Hostname').fill(host);
    await page.getByRole('button', { name: 'Deploy', exact: true }).click();
    await expect(page.getByRole('alert')).toContainText(`hostname "${host}" is taken`);
    await expect(page).toHaveURL(/\/catalog\/vaultwarden$/);
  });

  test('deploy with the keyboard alone', async ({ page, api }) => {
    const host = `memos-${run}`;
    await page.goto('/catalog');
    await expect(page.locator('li.entry').first()).toBeVisible();
    await page.getByLabel('Search').focus();
    await page.keyboard.type('memos');
    await expect(page).toHaveURL(/[?&]q=memos/);
    await expect(page.locator('li.entry')).toHaveCount(1);
    // From the search box: the category, then the first card.
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await expect(page.getByRole('link', { name: 'Memos', exact: true })).toBeFocused();
    await page.keyboard.press('Enter');
    await expect(page).toHaveURL(/\/catalog\/memos$/);
    await page.getByLabel('Hostname').focus();
    await page.keyboard.type(host);
    await page.keyboard.press('Enter');
    await expect(page).toHaveURL(/\/apps\/app_[0-9a-f]+$/);
    const id = new URL(page.url()).pathname.split('/').pop()!;
    made.push(id);
    const app = await waitForApp(api, id, ['running', 'error']);
    expect([app.status, app.hostname, app.catalog_id]).toEqual(['running', host, 'memos']);
  });
});

test.describe('as a user', () => {
  test.use({ storageState: storage.user });

  test('the entry page offers only the automatic node, and asks no admin route', async ({ page }) => {
    const asked: string[] = [];
    page.on('request', (r) => asked.push(new URL(r.url()).pathname));
    await page.goto('/catalog/vaultwarden');
    await expect(page.getByRole('heading', { level: 1, name: 'Vaultwarden' })).toBeVisible();
    const node = page.getByLabel('Node');
    await expect(node.locator('option')).toHaveText(['Automatic']);
    await expect(page.getByRole('button', { name: 'Deploy', exact: true })).toBeEnabled();
    expect(asked.filter((p) => p.startsWith('/api/v1/nodes'))).toEqual([]);
  });
});
