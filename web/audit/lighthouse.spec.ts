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
  const flags = ['--headless=new', '--no-sandbox', '--disable-gpu', '--ignore-certificate-errors', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'];
  // One page in one fresh Chromium. A run that could not record the page
  // load (Lighthouse's runtime error, e.g. NO_NAVSTART) measured nothing:
  // it is run again, up to three times, and said so; a low score never is.
  const audit = async (path: string) => {
    for (let attempt = 1; ; attempt++) {
      const chrome = await launch({ chromePath: process.env.CHROMIUM ?? '/usr/bin/chromium', chromeFlags: flags });
      try {
        const res = await lighthouse(state.url + path, {
          port: chrome.port,
          output: 'json',
          logLevel: 'error',
          onlyCategories: [...categories],
          extraHeaders: { Cookie: cookie },
        });
        if (!res) throw new Error(`no Lighthouse result for ${path}`);
        const err = res.lhr.runtimeError;
        if (!err || attempt === 3) return res.lhr;
        console.log(`${path}: Lighthouse could not measure (${err.code}); attempt ${attempt + 1} of 3`);
      } finally {
        chrome.kill();
      }
    }
  };
  const rows: string[] = [];
  const low: string[] = [];
  try {
    for (const [name, path] of [['catalog', '/catalog'], ['app page', `/apps/${app.id}`]] as const) {
      const lhr = await audit(path);
      if (lhr.runtimeError) low.push(`${name}: Lighthouse could not measure: ${lhr.runtimeError.code}: ${lhr.runtimeError.message}`);
      const scores = categories.map((c) => Math.round((lhr.categories[c]?.score ?? 0) * 100));
      rows.push(`${name.padEnd(10)} ${scores.map((s, i) => `${categories[i]} ${s}`).join('  ')}`);
      scores.forEach((s, i) => {
        if (s < minimum) {
          const failing = Object.values(lhr.audits)
            .filter((a) => a.score !== null && a.score < 0.9 && lhr.categories[categories[i]].auditRefs.some((r) => r.id === a.id && r.weight > 0))
            .map((a) => `${a.id}: ${a.displayValue ?? a.score}`);
          low.push(`${name} ${categories[i]} ${s} < ${minimum} (${failing.join('; ')})`);
        }
      });
    }
  } finally {
    await api.delete(`/api/v1/apps/${app.id}`);
  }
  console.log(`Lighthouse (minimum ${minimum}):\n  ${rows.join('\n  ')}`);
  expect(low).toEqual([]);
});
