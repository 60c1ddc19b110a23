// Lighthouse's performance, accessibility and best-practices scores of the
// catalog and an app page, signed in, in Debian's Chromium. Each must be at
// least 90; the scores are printed either way.
import { launch } from 'chrome-launcher';
import lighthouse from 'lighthouse';
import { readFileSync } from 'node:fs';
import { expect, storage, test, waitForApp } from '../e2e/fixtures';

const categories = ['performance', 'accessibility', 'best-practices'] as const;
const minimum = 90;

test('Lighthouse scores of the catalog and an app page', async ({ api, state }) => {
  const created = await api.post('/api/v1/apps', { data: { catalog_id: 'memos', hostname: 'lighthouse-memos' } });
  expect(created.status(), await created.text()).toBe(202);
  const app = await created.json();
  await waitForApp(api, app.id, ['running']);

  const cookies = JSON.parse(readFileSync(storage.admin, 'utf8')).cookies as { name: string; value: string }[];
  const cookie = cookies.map((c) => `${c.name}=${c.value}`).join('; ');
  const chrome = await launch({
    chromePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    chromeFlags: ['--headless=new', '--no-sandbox', '--disable-gpu', '--ignore-certificate-errors', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const rows: string[] = [];
  const low: string[] = [];
  try {
    for (const [name, path] of [['catalog', '/catalog'], ['app page', `/apps/${app.id}`]] as const) {
      const res = await lighthouse(state.url + path, {
        port: chrome.port,
        output: 'json',
        logLevel: 'error',
        onlyCategories: [...categories],
        extraHeaders: { Cookie: cookie },
      });
      if (!res) throw new Error(`no Lighthouse result for ${path}`);
      const scores = categories.map((c) => Math.round((res.lhr.categories[c]?.score ?? 0) * 100));
      rows.push(`${name.padEnd(10)} ${scores.map((s, i) => `${categories[i]} ${s}`).join('  ')}`);
      scores.forEach((s, i) => {
        if (s < minimum) {
          const failing = Object.values(res.lhr.audits)
            .filter((a) => a.score !== null && a.score < 0.9 && res.lhr.categories[categories[i]].auditRefs.some((r) => r.id === a.id && r.weight > 0))
            .map((a) => `${a.id}: ${a.displayValue ?? a.score}`);
          low.push(`${name} ${categories[i]} ${s} < ${minimum} (${failing.join('; ')})`);
        }
      });
    }
  } finally {
    chrome.kill();
    await api.delete(`/api/v1/apps/${app.id}`);
  }
  console.log(`Lighthouse (minimum ${minimum}):\n  ${rows.join('\n  ')}`);
  expect(low).toEqual([]);
});
