import type { Page } from '@playwright/test';
import { checkA11y, expect, shot, storage, test } from './fixtures';

// Every admin page (and the account page): what it shows and does, its
// screenshots at 1440 and 390 px, and axe at both widths and in dark mode.

const uniq = () => `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4).toString(36)}`;

/** Screenshots and axe at both widths, then in dark mode. */
async function looks(page: Page, name: string) {
  await checkA11y(page, `${name} at 1440`);
  await shot(page, name);
  await page.setViewportSize({ width: 390, height: 844 });
  await checkA11y(page, `${name} at 390`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow, `${name} scrolls sideways at 390 px`).toBeLessThanOrEqual(0);
  await shot(page, name);
  await page.emulateMedia({ colorScheme: 'dark' });
  await checkA11y(page, `${name} in dark mode`);
  await shot(page, `${name}-dark`);
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 1440, height: 900 });
}

test.describe('as an admin', () => {
  test.use({ storageState: storage.admin });

  test('nodes: three ready nodes with capacity bars; the join dialog shows the install command', async ({ page }) => {
    await page.goto('/admin/nodes');
    const nodes = page.getByRole('list', { name: 'Nodes' }).getByRole('listitem').filter({ has: page.getByRole('heading') });
    await expect(nodes).toHaveCount(3);
    for (const n of ['pve1', 'pve2', 'pve3']) {
      const card = nodes.filter({ has: page.getByRole('heading', { name: n }) });
      await expect(card.getByText('ready', { exact: true })).toBeVisible();
      for (const m of ['CPU', 'Memory', 'Disk']) await expect(card.getByRole('meter', { name: m })).toBeVisible();
      await expect(card.getByText(/of 16 cores allocated/)).toBeVisible();
      await expect(card.getByText(/of 64 GiB/)).toBeVisible();
    }
    await looks(page, 'admin-nodes');

    await page.getByRole('button', { name: 'Join a node' }).click();
    const dialog = page.getByRole('dialog', { name: 'Join a node' });
    await expect(dialog).toBeVisible();
    await dialog.getByLabel('Node name').fill('pve9');
    await dialog.getByRole('button', { name: 'Create join token' }).click();
    const cmd = dialog.getByTestId('install-command');
    await expect(cmd).toContainText(/^proximityctl node install root@pve9 --join-token pxj_\S+ --coordinator \S+:7073 --package \S+\.deb --node pve9$/);
    await dialog.getByLabel('SSH target').fill('root@10.0.0.9');
    await expect(cmd).toContainText('proximityctl node install root@10.0.0.9 --join-token pxj_');
    await expect(dialog.getByRole('button', { name: 'Copy command' })).toBeVisible();
    await checkA11y(page, 'join dialog');
    await shot(page, 'admin-nodes-join');
    await dialog.getByRole('button', { name: 'Done' }).click();
    await expect(dialog).toBeHidden();
  });

  test('users: create one with a password, set its quota, disable it', async ({ page, api }) => {
    const name = `u-${uniq()}`;
    await page.goto('/admin/users');
    await expect(page.getByRole('row').filter({ hasText: 'admin' }).first()).toBeVisible();
    await page.getByLabel('Name').fill(name);
    await page.getByLabel('Initial password').fill('short');
    await page.getByRole('button', { name: 'Create user' }).click();
    await expect(page.getByText('at least 12 characters, not 5')).toBeVisible();
    await page.getByLabel('Initial password').fill('a long enough password');
    await page.getByRole('button', { name: 'Create user' }).click();
    await expect(page.getByRole('status').filter({ hasText: `Created ${name}.` })).toBeVisible();
    const row = page.getByRole('row').filter({ hasText: name });
    await expect(row).toContainText('active');
    await expect(row).toContainText('0 (no limit)');
    await looks(page, 'admin-users');

    // The password works: the API signs the new user in.
    const login = await api.post('/api/v1/login', { data: { name, password: 'a long enough password' } });
    expect(login.status()).toBe(200);

    await row.getByRole('link', { name }).click();
    await expect(page.getByRole('heading', { level: 1, name: `User ${name}` })).toBeVisible();
    const id = page.url().split('/').pop()!;
    await page.getByLabel('Apps').fill('3');
    await page.getByLabel('Cores').fill('x');
    await page.getByRole('button', { name: 'Save quota' }).click();
    await expect(page.getByText('a whole number, 0 for unlimited')).toBeVisible();
    await page.getByLabel('Cores').fill('4');
    await page.getByRole('button', { name: 'Save quota' }).click();
    await expect(page.getByRole('status').filter({ hasText: 'Quota saved.' })).toBeVisible();
    const after = await (await api.get(`/api/v1/users/${id}`)).json();
    expect(after.quota).toMatchObject({ max_apps: 3, max_cores: 4 });

    await page.getByRole('button', { name: 'Disable' }).click();
    const ask = page.getByRole('dialog', { name: `Disable ${name}?` });
    await ask.getByRole('button', { name: 'Disable' }).click();
    await expect(page.getByTestId('user-state')).toHaveText('disabled');
    expect((await (await api.get(`/api/v1/users/${id}`)).json()).disabled).toBe(true);
    await looks(page, 'admin-user');

    await page.goto('/admin/users');
    await expect(page.getByRole('row').filter({ hasText: name })).toContainText('disabled');
    await expect(page.getByRole('row').filter({ hasText: name })).toContainText('0 of 3');
  });
});
