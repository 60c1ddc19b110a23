import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { APIRequestContext, Page } from '@playwright/test';
import { checkA11y, expect, shot, storage, test, waitForApp } from './fixtures';

// The apps list and an app's page, driven as a person would: live status,
// actions, logs, backups, settings, clone, update and delete.

const run = Math.random().toString(36).slice(2, 7);

async function deploy(api: APIRequestContext, hostname: string, catalogID = 'gotify') {
  const res = await api.post('/api/v1/apps', { data: { catalog_id: catalogID, hostname } });
  expect(res.status(), await res.text()).toBe(202);
  const app = await res.json();
  return waitForApp(api, app.id, ['running']);
}

/** Screenshots and axe at 1440 and 390 px, and axe once in dark mode. */
async function views(page: Page, name: string) {
  await checkA11y(page, `${name} 1440`);
  await shot(page, name);
  await page.setViewportSize({ width: 390, height: 844 });
  await checkA11y(page, `${name} 390`);
  await shot(page, name);
  // No horizontal page scroll; if there is, the elements that stick out
  // (those inside a box that scrolls are fine).
  const wide = await page.evaluate(() => {
    if (document.documentElement.scrollWidth <= window.innerWidth) return [];
    const clipped = (e: Element) => {
      for (let p = e.parentElement; p; p = p.parentElement) {
        if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) return true;
      }
      return false;
    };
    const out = [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !clipped(e))
      .map((e) => `${e.tagName.toLowerCase()}.${[...e.classList].join('.')}`);
    return [`scrollWidth ${document.documentElement.scrollWidth}`, ...out.slice(0, 8)];
  });
  expect(wide, `${name}: no horizontal scroll at 390 px`).toEqual([]);
  await page.emulateMedia({ colorScheme: 'dark' });
  await checkA11y(page, `${name} dark`);
  await shot(page, `${name}-dark`);
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 1440, height: 900 });
}

test.describe('apps', () => {
  test.use({ storageState: storage.admin });

  test('the list shows an app with its URL, and stop and start change its status live', async ({ page, api }) => {
    const host = `ui-list-${run}`;
    const app = await deploy(api, host);
    const url = app.urls.find((u: { main: boolean }) => u.main).url;
    await page.goto('/apps');
    await expect(page.getByRole('heading', { name: 'Apps', level: 1 })).toBeVisible();
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: host, exact: true }) });
    await expect(row.getByRole('link', { name: url })).toHaveAttribute('href', url);
    await expect(row.getByText('running', { exact: true })).toBeVisible();
    await expect(row.getByText('gotify')).toBeVisible();
    await views(page, 'apps');

    await row.getByRole('button', { name: `Stop ${host}`, exact: true }).click();
    await expect(row.getByText('stopped', { exact: true })).toBeVisible();
    await expect(row.getByRole('button', { name: `Start ${host}`, exact: true })).toBeEnabled();
    await expect(row.getByRole('button', { name: `Stop ${host}`, exact: true })).toBeDisabled();
    // A change made elsewhere (the API) shows without a reload.
    await api.post(`/api/v1/apps/${app.id}/actions`, { data: { action: 'start' } });
    await expect(row.getByText('running', { exact: true })).toBeVisible();
    await row.getByRole('button', { name: `Restart ${host}`, exact: true }).click();
    await expect(row.getByText('running', { exact: true })).toBeVisible();
    await waitForApp(api, app.id, ['running']);
    const del = await api.delete(`/api/v1/apps/${app.id}`);
    expect(del.status(), await del.text()).toBe(202);
    await expect(row).toHaveCount(0);
  });

  test('the app page: actions, overview with secrets, logs, metrics and its tabs', async ({ page, api }) => {
    const host = `ui-page-${run}`;
    const app = await deploy(api, host);
    const url = app.urls.find((u: { main: boolean }) => u.main).url;
    await page.goto('/apps');
    await page.getByRole('link', { name: host, exact: true }).click();
    await expect(page).toHaveURL(new RegExp(`/apps/${app.id}$`));
    await expect(page.getByRole('heading', { name: host, level: 1 })).toBeVisible();
    const open = page.getByRole('link', { name: 'Open', exact: true });
    await expect(open).toHaveAttribute('href', url);
    await expect(open).toHaveAttribute('target', '_blank');
    const tabs = page.getByRole('navigation', { name: 'App sections' });
    await expect(tabs.getByRole('link', { name: 'Overview' })).toHaveAttribute('aria-current', 'page');
    // No update offered: Update is disabled.
    await expect(page.getByRole('button', { name: 'Update', exact: true })).toBeDisabled();
    await expect(page.getByRole('button', { name: 'Start', exact: true })).toBeDisabled();

    // Secrets only on request.
    let secretsRead = 0;
    page.on('request', (r) => {
      if (r.url().endsWith(`/api/v1/apps/${app.id}/secrets`)) secretsRead++;
    });
    await expect(page.getByText('GOTIFY_DEFAULTUSER_PASS', { exact: false })).toBeVisible();
    expect(secretsRead).toBe(0);
    await page.getByRole('button', { name: 'Reveal secrets' }).click();
    const secrets = (await (await api.get(`/api/v1/apps/${app.id}/secrets`)).json()).items;
    await expect(page.getByText(secrets[0].value, { exact: true })).toBeVisible();
    expect(secretsRead).toBe(1);
    await views(page, 'app-overview');
    await page.getByRole('button', { name: 'Hide' }).click();
    await expect(page.getByText(secrets[0].value, { exact: true })).toHaveCount(0);

    // Stop and start from the page: the status follows live.
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await expect(page.locator('.status').getByText('stopped', { exact: true })).toBeVisible();
    await expect(page.getByRole('button', { name: 'Reveal secrets' })).toBeDisabled();
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    await expect(page.locator('.status').getByText('running', { exact: true })).toBeVisible();
    await page.getByRole('button', { name: 'Restart', exact: true }).click();
    await expect(page.locator('.status').getByText('running', { exact: true })).toBeVisible();
    await waitForApp(api, app.id, ['running']);

    // Logs: the app's own lines arrive live, and the deployment log.
    await tabs.getByRole('link', { name: 'Logs' }).click();
    await expect(page).toHaveURL(new RegExp(`/apps/${app.id}/logs$`));
    await expect(tabs.getByRole('link', { name: 'Logs' })).toHaveAttribute('aria-current', 'page');
    const live = page.getByRole('region', { name: 'App log lines' });
    await expect(live.getByText('gotify: starting, listening').first()).toBeVisible();
    await expect(page.getByText('Following live.')).toBeVisible();
    await expect(page.getByRole('region', { name: 'Deployment log lines' }).getByText('deploy: done; running')).toBeVisible();
    await views(page, 'app-logs');
    await page.getByLabel('Follow').uncheck();
    await expect(page.getByText(/Paused/)).toBeVisible();
    // Stopped: no stream is asked for, a note says why.
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await expect(page.getByText(/can be read while it is running/)).toBeVisible();
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    await expect(page.locator('.status').getByText('running', { exact: true })).toBeVisible();

    await tabs.getByRole('link', { name: 'Metrics' }).click();
    await expect(page).toHaveURL(new RegExp(`/apps/${app.id}/metrics$`));
    await expect(tabs.getByRole('link', { name: 'Metrics' })).toHaveAttribute('aria-current', 'page');
    await views(page, 'app-metrics');
    await api.delete(`/api/v1/apps/${app.id}`);
    await expect(page.getByText('This app was deleted.')).toBeVisible();
    await expect(page.getByRole('link', { name: 'Back to your apps' })).toHaveAttribute('href', '/apps');
  });

  test('backups: back up, restore in place, restore to another node, delete; the policy', async ({ page, api, allowConsole }) => {
    const host = `ui-bk-${run}`;
    const app = await deploy(api, host);
    await page.goto(`/apps/${app.id}/backups`);
    await expect(page.getByRole('heading', { name: 'Backups', level: 2 })).toBeVisible();
    await expect(page.getByText('No backups yet.')).toBeVisible();
    await page.getByRole('button', { name: 'Back up', exact: true }).click();
    const rows = page.getByRole('table').getByRole('row');
    await expect(rows).toHaveCount(2);
    await expect(rows.nth(1).getByText('ready', { exact: true })).toBeVisible();
    await expect(rows.nth(1).getByText('manual')).toBeVisible();
    await waitForApp(api, app.id, ['running']);
    await views(page, 'app-backups');

    // Restore in place.
    await rows.nth(1).getByRole('button', { name: /^Restore/ }).click();
    const dialog = page.getByRole('dialog', { name: `Restore ${host}` });
    await expect(dialog.getByLabel(/On its node/)).toBeChecked();
    await dialog.getByRole('button', { name: 'Restore backup' }).click();
    await expect(dialog).toBeHidden();
    await expect(page.getByText(`Restoring ${host}…`)).toBeVisible();
    await waitForApp(api, app.id, ['running']);
    await expect(page.locator('.status').getByText('running', { exact: true })).toBeVisible();

    // Onto another node: the dev nodes' backup storage is not shared, so
    // the API refuses and the dialog says why.
    await rows.nth(1).getByRole('button', { name: /^Restore/ }).click();
    await dialog.getByLabel(/On another node/).check();
    const target = dialog.getByLabel('Node', { exact: true });
    await expect(target).not.toHaveValue(app.node);
    await expect(target).not.toHaveValue('');
    allowConsole.push(/status of 409/);
    await dialog.getByRole('button', { name: 'Restore backup' }).click();
    await expect(dialog.getByRole('alert')).toContainText(/cannot read|shared storage/);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await expect(dialog).toBeHidden();

    // The policy.
    await page.getByLabel('Schedule').fill('sat 02:00');
    await page.getByLabel('Keep last').fill('3');
    await page.getByRole('button', { name: 'Save policy' }).click();
    await expect(page.getByText('This app has its own policy.')).toBeVisible();
    const pol = await (await api.get(`/api/v1/apps/${app.id}/backup-policy`)).json();
    expect([pol.schedule, pol.retention.keep_last, pol.source]).toEqual(['sat 02:00', 3, 'app']);
    await page.getByRole('button', { name: 'Use the default policy' }).click();
    await expect(page.getByText('The cluster’s default policy applies.')).toBeVisible();

    // Delete the backup.
    await rows.nth(1).getByRole('button', { name: /^Delete the backup/ }).click();
    await page.getByRole('dialog', { name: 'Delete this backup?' }).getByRole('button', { name: 'Delete backup' }).click();
    await expect(page.getByText('No backups yet.')).toBeVisible();
    await api.delete(`/api/v1/apps/${app.id}`);
  });

  test('settings: a reconfigure with field errors, the update policy; clone; delete with typed confirmation', async ({ page, api, allowConsole }) => {
    const host = `ui-set-${run}`;
    const app = await deploy(api, host);
    await page.goto(`/apps/${app.id}/settings`);
    const tz = page.getByLabel('Time zone');
    await expect(tz).toHaveValue('Etc/UTC');
    await expect(page.getByLabel('Admin password')).toHaveAttribute('placeholder', 'set — leave empty to keep');
    await views(page, 'app-settings');
    allowConsole.push(/status of 400/);
    await tz.fill('not a zone!');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect(page.locator('#set-TZ-error')).toContainText(/does not match the pattern/);
    await expect(page.getByRole('alert')).toContainText('Check the settings marked below');
    await expect(tz).toHaveAttribute('aria-invalid', 'true');
    await tz.fill('Europe/Berlin');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect(page.getByText(/Reconfiguring/)).toBeVisible();
    await expect.poll(async () => (await (await api.get(`/api/v1/apps/${app.id}`)).json()).settings.TZ).toBe('Europe/Berlin');
    await waitForApp(api, app.id, ['running']);
    await expect(page.locator('.status').getByText('running', { exact: true })).toBeVisible();

    await page.getByLabel('Automatic updates').selectOption('notify');
    await page.getByLabel('Maintenance window').fill('sun 03:00');
    await page.getByRole('button', { name: 'Save update policy' }).click();
    await expect(page.getByText('Update policy saved.')).toBeVisible();
    const after = await (await api.get(`/api/v1/apps/${app.id}`)).json();
    expect([after.auto_update, after.maintenance_window]).toEqual(['notify', 'sun 03:00']);

    // Clone: the clone's page, where it reaches running.
    const cloneHost = `ui-clone-${run}`;
    await page.getByRole('button', { name: 'Clone', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: `Clone ${host}` });
    await dialog.getByLabel('New hostname').fill(cloneHost);
    await dialog.getByRole('button', { name: 'Clone app' }).click();
    await expect(page.getByRole('heading', { name: cloneHost, level: 1 })).toBeVisible();
    const cloneID = page.url().split('/').pop()!;
    expect(cloneID).not.toBe(app.id);
    await expect(page.locator('.status').getByText('running', { exact: true })).toBeVisible({ timeout: 30_000 });

    // Delete the clone, typing its hostname.
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    const confirm = page.getByRole('dialog', { name: `Delete ${cloneHost}?` });
    const go = confirm.getByRole('button', { name: 'Delete app' });
    await expect(go).toBeDisabled();
    await confirm.getByLabel(/Type/).fill(host);
    await expect(go).toBeDisabled();
    await confirm.getByLabel(/Type/).fill(cloneHost);
    await go.click();
    await expect(page).toHaveURL(/\/apps$/);
    await expect.poll(async () => (await api.get(`/api/v1/apps/${cloneID}`)).status(), { timeout: 30_000 }).toBe(404);
    await expect(page.getByRole('link', { name: cloneHost, exact: true })).toHaveCount(0);
    await api.delete(`/api/v1/apps/${app.id}`);
  });

  test('update: a newer version in the catalog enables Update, which moves the app to it', async ({ page, api }) => {
    // A catalog source of one entry in a directory: its version goes up
    // between the deploy and the update.
    const dir = mkdtempSync(path.join(tmpdir(), 'proximity-e2e-src-'));
    const source = `e2e-apps-${run}`;
    const starter = readFileSync(path.resolve(import.meta.dirname, '../../internal/catalog/starter/gotify.yaml'), 'utf8');
    const entry = (v: string) => starter.replace(/^id: gotify$/m, 'id: tiny').replace(/^version: .*$/m, `version: "${v}"`).replace(/^icon: .*$/m, '');
    writeFileSync(path.join(dir, 'tiny.yaml'), entry('1.0.0'));
    const added = await api.post('/api/v1/catalog/sources', { data: { name: source, url: `dir://${dir}`, format: 'proximity' } });
    expect(added.status(), await added.text()).toBe(201);
    try {
      const host = `ui-upd-${run}`;
      const app = await deploy(api, host, `${source}/tiny`);
      writeFileSync(path.join(dir, 'tiny.yaml'), entry('1.1.0'));
      expect((await api.post('/api/v1/catalog/reload')).ok()).toBe(true);
      await page.goto(`/apps/${app.id}`);
      const update = page.getByRole('button', { name: 'Update', exact: true });
      await expect(update).toBeEnabled();
      await expect(page.getByText('1.1.0 available').first()).toBeVisible();
      await update.click();
      await page.getByRole('dialog', { name: `Update ${host}?` }).getByRole('button', { name: 'Update to 1.1.0' }).click();
      await expect.poll(async () => (await (await api.get(`/api/v1/apps/${app.id}`)).json()).catalog_version, { timeout: 30_000 }).toBe('1.1.0');
      await waitForApp(api, app.id, ['running']);
      await expect(update).toBeDisabled();
      await expect(page.getByText('1.1.0', { exact: true })).toBeVisible();
      await api.delete(`/api/v1/apps/${app.id}`);
    } finally {
      await api.delete(`/api/v1/catalog/sources/${source}`);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test.describe('as a user', () => {
  test.use({ storageState: storage.user });

  test("another user's app is not found", async ({ page, api, allowConsole }) => {
    const app = await deploy(api, `ui-admin-${run}`);
    allowConsole.push(/status of 404/);
    await page.goto(`/apps/${app.id}`);
    await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
    await expect(page.getByText(/not found/).first()).toBeVisible();
    await api.delete(`/api/v1/apps/${app.id}`);
  });
});

test('a new user sees the empty list with a link to the catalog', async ({ browser, api, state }) => {
  const name = `e2e-apps-${run}`;
  const password = 'a long enough password 123';
  const created = await api.post('/api/v1/users', { data: { name, role: 'user' } });
  expect(created.ok(), await created.text()).toBe(true);
  const { id } = await created.json();
  expect((await api.put(`/api/v1/users/${id}/password`, { data: { password } })).ok()).toBe(true);
  const ctx = await browser.newContext({ baseURL: state.url, ignoreHTTPSErrors: true });
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  expect((await page.request.post('/api/v1/login', { data: { name, password } })).ok()).toBe(true);
  await page.goto('/apps');
  await expect(page.getByRole('heading', { name: 'No apps yet' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Browse the catalog' })).toHaveAttribute('href', '/catalog');
  await views(page, 'apps-empty');
  expect(errors).toEqual([]);
  await ctx.close();
});
