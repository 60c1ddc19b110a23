import { auditPage, checkA11y, expect, shot, storage, test } from './fixtures';
import { totp } from './totp';

test('sign in with the form, see the navigation, sign out', async ({ page, state, allowConsole }) => {
  await page.goto('/');
  await expect(page).toHaveURL(/\/login/);
  await auditPage(page, 'signin');
  await page.getByLabel('Name').fill(state.admin.name);
  // The browser logs the refused sign-in's 401; that one is expected.
  allowConsole.push(/status of 401/);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText(/password/i);
  await page.getByLabel('Password').fill(state.admin.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/catalog/);
  const nav = page.getByRole('navigation', { name: 'Main' });
  for (const name of ['Catalog', 'Apps', 'Nodes', 'Users', 'Settings', 'Cluster', 'Audit']) {
    await expect(nav.getByRole('link', { name, exact: true })).toBeVisible();
  }
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login/);
  await page.goto('/apps');
  await expect(page).toHaveURL(/\/login\?next=%2Fapps/);
});

test.describe('as a user', () => {
  test.use({ storageState: storage.user });
  test('no admin pages in the navigation, and an admin page is not found', async ({ page }) => {
    await page.goto('/catalog');
    const nav = page.getByRole('navigation', { name: 'Main' });
    await expect(nav.getByRole('link', { name: 'Catalog', exact: true })).toBeVisible();
    await expect(nav.getByRole('link', { name: 'Apps', exact: true })).toBeVisible();
    for (const name of ['Nodes', 'Users', 'Settings', 'Cluster', 'Audit']) {
      await expect(nav.getByRole('link', { name, exact: true })).toHaveCount(0);
    }
    await page.goto('/admin/users');
    await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
    await auditPage(page, 'not-found');
  });
});

test('a user with two-factor authentication signs in with a code', async ({ page, api, state, allowConsole }) => {
  const name = `totp-${Date.now().toString(36)}`;
  const password = 'a long enough password';
  const created = await api.post('/api/v1/users', { data: { name, role: 'user' } });
  expect(created.status()).toBe(201);
  const { id } = await created.json();
  expect((await api.put(`/api/v1/users/${id}/password`, { data: { password } })).ok()).toBe(true);
  // Enrol through the API with the user's own session token.
  const login = await api.post('/api/v1/login', { data: { name, password }, headers: { Authorization: '' } });
  const { token } = await login.json();
  const as = { Authorization: `Bearer ${token}` };
  const { secret } = await (await api.post('/api/v1/me/totp', { headers: as })).json();
  const verified = await api.post('/api/v1/me/totp/verify', { headers: as, data: { code: totp(secret) } });
  expect(verified.ok(), await verified.text()).toBe(true);
  const { recovery_codes: codes } = await verified.json();

  // The form asks for the code once the password is right.
  allowConsole.push(/status of 401/);
  await page.goto(`${state.url}/login`);
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const code = page.getByLabel('Authentication code');
  await expect(code).toBeFocused();
  await checkA11y(page, 'sign-in with a code');
  await code.fill('000000');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText(/one-time code/);
  await code.fill(codes[0]);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/catalog/);
  await expect(page.getByRole('link', { name })).toBeVisible();
  await api.delete(`/api/v1/users/${id}`);
});

test('the sign-in page offers single sign-on once it is configured', async ({ page, api, state }) => {
  await page.goto(`${state.url}/login`);
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible();
  await expect(page.getByRole('link', { name: /single sign-on/ })).toHaveCount(0);
  const put = await api.put('/api/v1/settings/oidc', {
    data: { issuer: 'https://sso.example.test/realms/proximity', client_id: 'proximity', client_secret: 'a client secret', redirect_url: `${state.url}/api/v1/auth/oidc/callback` },
  });
  expect(put.ok(), await put.text()).toBe(true);
  try {
    await page.reload();
    const sso = page.getByRole('link', { name: 'Sign in with single sign-on' });
    await expect(sso).toHaveAttribute('href', '/api/v1/auth/oidc/login');
    await shot(page, 'signin-sso');
  } finally {
    await api.put('/api/v1/settings/oidc', { data: { issuer: '' } });
  }
});
