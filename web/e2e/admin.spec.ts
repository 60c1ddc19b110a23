import type { Page } from '@playwright/test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkA11y, expect, shot, storage, test, waitForApp } from './fixtures';
import { totp } from './totp';

// Every admin page (and the account page): what it shows and does, its
// screenshots at 1440 and 390 px, and axe at both widths and in dark mode.

// The tests are independent (each makes its own users, apps and sources):
// they may run side by side.
test.describe.configure({ mode: 'parallel' });

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

  test('settings: every section; the placement strategy persists; a catalog source with its report', async ({ page, api, allowConsole }) => {
    await page.goto('/admin/settings');
    const tabs = page.getByRole('navigation', { name: 'Settings sections' });
    await expect(tabs.getByRole('link', { name: 'Network' })).toHaveAttribute('aria-current', 'page');
    for (const [name, field] of [
      ['Network', 'Subnet'],
      ['Resources', 'Container storage'],
      ['Quotas', 'Cores'],
      ['Backups', 'Schedule'],
      ['Single sign-on', 'Issuer'],
      ['VMIDs and ports', 'First VMID'],
      ['Audit log', 'Records kept'],
    ]) {
      await tabs.getByRole('link', { name }).click();
      await expect(page.getByRole('heading', { level: 2, name })).toBeVisible();
      await expect(page.getByLabel(field, { exact: true })).toBeVisible();
      // axe on the sections whose markup differs (a table, fieldsets, a secret).
      if (['Resources', 'Backups', 'Single sign-on'].includes(name)) await checkA11y(page, `settings ${name}`);
    }
    // A refusal names its field inline (the browser logs its 400).
    allowConsole.push(/status of 400/);
    await tabs.getByRole('link', { name: 'Network' }).click();
    await page.getByLabel('Subnet').fill('not a prefix');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect(page.getByText('"not a prefix" is not a CIDR prefix')).toBeVisible();
    await expect(page.getByLabel('Subnet')).toHaveAttribute('aria-invalid', 'true');

    await tabs.getByRole('link', { name: 'Placement' }).click();
    await expect(page).toHaveURL(/\/admin\/settings\/placement$/);
    const before = (await (await api.get('/api/v1/settings/placement')).json()).strategy;
    const other = before === 'pack' ? 'spread' : 'pack';
    await page.getByRole('radio', { name: new RegExp(`^${other}`, 'i') }).check();
    await page.getByRole('button', { name: 'Save' }).click();
    await expect(page.getByRole('status').filter({ hasText: 'Saved.' })).toBeVisible();
    await page.reload();
    await expect(page.getByRole('radio', { name: new RegExp(`^${other}`, 'i') })).toBeChecked();
    expect((await (await api.get('/api/v1/settings/placement')).json()).strategy).toBe(other);
    await looks(page, 'admin-settings-placement');
    await api.patch('/api/v1/settings/placement', { data: { strategy: before } });

    // Catalog sources: builtin with its report; a dir:// source whose one
    // entry is rejected shows the problem, and is removed again.
    await tabs.getByRole('link', { name: 'Catalog sources' }).click();
    const sources = page.getByRole('list', { name: 'Catalog sources' });
    const builtin = sources.getByRole('listitem').filter({ has: page.getByRole('heading', { name: /^builtin/ }) });
    await expect(builtin).toContainText('built in: starter');
    expect(Number(await builtin.getByTestId('entries').textContent())).toBeGreaterThan(10);
    const dir = mkdtempSync(path.join(tmpdir(), 'proximity-e2e-src-'));
    writeFileSync(path.join(dir, 'broken.yaml'), 'id: Not Valid!\nname: broken\n');
    const name = `e2e-${uniq()}`;
    await page.getByLabel('Source name').fill(name);
    await page.getByLabel('URL').fill(`dir://${dir}`);
    await page.getByRole('button', { name: 'Add source' }).click();
    await expect(page.getByRole('status').filter({ hasText: `Added ${name}: 0 entries.` })).toBeVisible();
    const mine = sources.getByRole('listitem').filter({ has: page.getByRole('heading', { name: new RegExp(`^${name}`) }) });
    await expect(mine.getByText(/rejected/).first()).toBeVisible();
    await expect(mine.getByText('broken.yaml').or(mine.getByText(/Not Valid/)).first()).toBeVisible();
    await looks(page, 'admin-settings-catalog');
    await mine.getByRole('button', { name: `Remove source ${name}` }).click();
    await page.getByRole('dialog', { name: `Remove the source ${name}?` }).getByRole('button', { name: 'Remove source' }).click();
    await expect(mine).toHaveCount(0);
    expect((await (await api.get('/api/v1/catalog/sources')).json()).items.map((s: { name: string }) => s.name)).not.toContain(name);
  });

  test('cluster: the leader, the Raft indexes and the members', async ({ page, api }) => {
    const c = await (await api.get('/api/v1/cluster')).json();
    await page.goto('/admin/cluster');
    await expect(page.getByTestId('leader')).toHaveText(c.leader.id);
    await expect(page.getByTestId('health')).toHaveText('ready');
    const row = page.getByRole('row').filter({ hasText: c.leader.id });
    await expect(row.getByText('leader', { exact: true })).toBeVisible();
    await expect(row).toContainText(c.members[0].keys[0]);
    await expect(page.getByRole('button', { name: `Remove member ${c.leader.id}` })).toBeDisabled();
    await looks(page, 'admin-cluster');
  });

  test('audit: the creation of a user, filtered by action and kept in the URL', async ({ page, api }) => {
    const name = `aud-${uniq()}`;
    const created = await (await api.post('/api/v1/users', { data: { name, role: 'user' } })).json();
    await page.goto('/admin/audit');
    await expect(page.getByRole('row').filter({ hasText: created.id })).toContainText('POST /api/v1/users');
    await page.getByLabel('Action').fill('POST /api/v1/users');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect(page).toHaveURL(/action=POST/);
    await expect(page.getByText(/\d+ records?, newest first/)).toBeVisible();
    const rows = page.getByRole('row').filter({ has: page.locator('td') });
    await expect(rows.filter({ hasText: created.id })).toHaveCount(1);
    for (const text of await rows.allTextContents()) expect(text).toContain('POST /api/v1/users');
    // The filter holds after a reload, and another action finds other records.
    await page.reload();
    await expect(page.getByLabel('Action')).toHaveValue('POST /api/v1/users');
    await expect(rows.filter({ hasText: created.id })).toHaveCount(1);
    await page.getByLabel('Action').fill('DELETE /api/v1/nodes');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect(rows.filter({ hasText: created.id })).toHaveCount(0);
    await page.getByRole('button', { name: 'Clear' }).click();
    await expect(page).toHaveURL(/\/admin\/audit$/);
    await page.getByLabel('Target').fill(created.id);
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect(page).toHaveURL(new RegExp(`target=${created.id}`));
    await expect(rows).toHaveCount(1);
    await looks(page, 'admin-audit');
  });

  test('reservations: an app holds one that cannot be released; one made by hand can', async ({ page, api, allowConsole }) => {
    const host = `rsv-${uniq()}`;
    const res = await api.post('/api/v1/apps', { data: { catalog_id: 'vaultwarden', hostname: host } });
    expect(res.status(), await res.text()).toBe(202);
    const app = await res.json();
    const manual = `hand-${uniq()}`;
    const r2 = await api.post('/api/v1/reservations', { data: { hostname: manual, node: 'pve2', public_ports: 1 } });
    expect(r2.status(), await r2.text()).toBe(201);
    try {
      await page.goto('/admin/reservations');
      const row = page.getByRole('row').filter({ hasText: host });
      await expect(row).toContainText(String(app.vmid));
      await expect(row.getByRole('link', { name: host })).toHaveAttribute('href', `/apps/${app.id}`);
      await page.getByLabel('Kind').selectOption('app');
      await expect(page).toHaveURL(/kind=app/);
      await expect(page.getByRole('row').filter({ hasText: manual })).toHaveCount(0);
      await page.getByLabel('Owner app').fill(host);
      await expect(page.getByText(/^1 of \d+ reservations$/)).toBeVisible();
      await looks(page, 'admin-reservations');

      allowConsole.push(/status of 409/);
      await row.getByRole('button', { name: /^Release/ }).click();
      const ask = page.getByRole('dialog', { name: `Release ${host}?` });
      await ask.getByRole('button', { name: 'Release' }).click();
      await expect(ask.getByRole('alert')).toContainText(`belongs to app ${host}`);
      await ask.getByRole('button', { name: 'Close' }).click();
      await expect(row).toBeVisible();

      await page.goto('/admin/reservations?kind=user');
      const mine = page.getByRole('row').filter({ hasText: manual });
      await mine.getByRole('button', { name: /^Release/ }).click();
      await page.getByRole('dialog', { name: `Release ${manual}?` }).getByRole('button', { name: 'Release' }).click();
      await expect(page.getByRole('status').filter({ hasText: `Released ${manual}` })).toBeVisible();
      await expect(mine).toHaveCount(0);
    } finally {
      await waitForApp(api, app.id, ['running', 'error']);
      await api.delete(`/api/v1/apps/${app.id}`);
    }
  });
});

test.describe('account', () => {
  test('as the shared user: who it is, its quota and its sessions (nothing changed)', async ({ browser, state }) => {
    const ctx = await browser.newContext({ storageState: storage.user, baseURL: state.url, ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto('/account');
    await expect(page.getByRole('heading', { level: 2, name: state.user.name })).toBeVisible();
    await expect(page.getByText('user', { exact: true }).first()).toBeVisible();
    await expect(page.getByRole('heading', { name: 'Quota' })).toBeVisible();
    await expect(page.getByRole('row').filter({ hasText: 'this one' })).toContainText('session');
    await expect(page.getByRole('button', { name: 'Set up two-factor' }).or(page.getByText(/^On: signing in/))).toBeVisible();
    await looks(page, 'account');
    expect(errors).toEqual([]);
    await ctx.close();
  });

  test('a new user changes its password, turns two-factor on and makes a token', async ({ page, api, allowConsole }) => {
    const name = `acct-${uniq()}`;
    const first = 'first password 1234';
    const u = await (await api.post('/api/v1/users', { data: { name, role: 'user' } })).json();
    expect((await api.put(`/api/v1/users/${u.id}/password`, { data: { password: first } })).status()).toBe(204);
    await page.goto('/login');
    await page.getByLabel('Name').fill(name);
    await page.getByLabel('Password').fill(first);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(/\/catalog/);
    await page.getByRole('link', { name, exact: true }).click();
    await expect(page).toHaveURL(/\/account$/);

    // A wrong current password is refused; the right one changes it.
    allowConsole.push(/status of 40[0-3]/);
    await page.getByLabel('Current password').fill('not the password');
    await page.getByLabel('New password', { exact: true }).fill('second password 5678');
    await page.getByLabel('New password again').fill('second password 5678');
    await page.getByRole('button', { name: 'Change password' }).click();
    await expect(page.getByRole('status').filter({ hasText: 'Password changed' })).toHaveCount(0);
    await expect(page.getByLabel('Current password')).toHaveAttribute('aria-invalid', 'true');
    await expect(page.getByText('does not match')).toBeVisible();
    await page.getByLabel('Current password').fill(first);
    await page.getByRole('button', { name: 'Change password' }).click();
    await expect(page.getByRole('status').filter({ hasText: 'Password changed' })).toBeVisible();
    expect((await api.post('/api/v1/login', { data: { name, password: 'second password 5678' } })).status()).toBe(200);

    await page.getByRole('button', { name: 'Set up two-factor' }).click();
    const secret = (await page.getByTestId('totp-secret').textContent())!.trim();
    await expect(page.getByTestId('totp-uri')).toContainText('otpauth://totp/');
    await expect(page.getByTestId('totp-uri')).toContainText(secret);
    await page.getByLabel('Code from the app').fill(totp(secret));
    await page.getByRole('button', { name: 'Turn on' }).click();
    const codes = page.getByRole('group', { name: 'Recovery codes' }).getByTestId('secret');
    await expect(codes).toBeVisible();
    expect((await codes.textContent())!.trim().split('\n')).toHaveLength(10);
    await expect(page.getByTestId('totp-state')).toHaveText('on');
    expect((await (await api.get(`/api/v1/users/${u.id}`)).json()).totp_enabled).toBe(true);

    await page.getByLabel('Token name').fill('laptop');
    await page.getByRole('button', { name: 'Create token' }).click();
    const tok = page.getByRole('group', { name: /New API token laptop/ }).getByTestId('secret');
    await expect(tok).toContainText('pxt_');
    const me = await page.request.get('/api/v1/me', { headers: { Authorization: `Bearer ${(await tok.textContent())!.trim()}` } });
    expect((await me.json()).name).toBe(name);
    const row = page.getByRole('row').filter({ hasText: 'laptop' });
    await row.getByRole('button', { name: /^Revoke/ }).click();
    await page.getByRole('dialog', { name: 'Revoke this token?' }).getByRole('button', { name: 'Revoke' }).click();
    await expect(row).toHaveCount(0);
    await looks(page, 'account-own');
  });
});
