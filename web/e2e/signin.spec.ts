import { checkA11y, expect, shot, storage, test } from './fixtures';

test('sign in with the form, see the navigation, sign out', async ({ page, state, allowConsole }) => {
  await page.goto('/');
  await expect(page).toHaveURL(/\/login/);
  await checkA11y(page, 'sign-in');
  await shot(page, 'signin');
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
  });
});
