import { auditPage, expect, storage, test, waitForApp } from './fixtures';

// The metrics tab of an app: the leader's history of the app's container
// (GET /api/v1/apps/{id}/metrics?range=1h) drawn as four charts with their
// values as text. The dev cluster's agents send their inventory every
// 5-6 s, so a few samples take about 15 s.

const uniq = () => `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4).toString(36)}`;

test.describe('as an admin', () => {
  test.use({ storageState: storage.admin });

  test('metrics: the history grows with reports, range filters it, and the tab charts it', async ({ page, api }) => {
    test.setTimeout(90_000);
    const created = await api.post('/api/v1/apps', { data: { catalog_id: 'gotify', hostname: `metrics-${uniq()}` } });
    expect(created.status(), await created.text()).toBe(202);
    const { id } = await created.json();
    try {
      await waitForApp(api, id, ['running'], 45_000);

      // The API: samples of the running container, oldest first, more
      // with each report; a bad range is a problem document.
      type Sample = { at: string; status: string; cpu: number; mem: number; max_mem: number; net_in: number };
      const history = async (range: string): Promise<Sample[]> => {
        const res = await api.get(`/api/v1/apps/${id}/metrics?range=${range}`);
        expect(res.status()).toBe(200);
        return (await res.json()).history;
      };
      let first: Sample[] = [];
      await expect
        .poll(async () => (first = await history('1h')).filter((s) => s.status === 'running').length, { timeout: 30_000, intervals: [1000] })
        .toBeGreaterThanOrEqual(3);
      const times = first.map((s) => Date.parse(s.at));
      expect(times).toEqual([...times].sort((a, b) => a - b));
      const last = first.at(-1)!;
      expect(last.max_mem).toBeGreaterThan(0);
      expect(last.mem).toBeGreaterThan(0);
      expect((await history('5s')).length).toBeLessThan(first.length);
      const bad = await api.get(`/api/v1/apps/${id}/metrics?range=2h`);
      expect(bad.status()).toBe(400);
      expect(bad.headers()['content-type']).toContain('application/problem+json');
      const plain = await (await api.get(`/api/v1/apps/${id}/metrics`)).json();
      expect(plain.history).toBeUndefined();
      expect(plain.status).toBe('running');

      // The tab: four charts with lines through the samples, values as text.
      await page.goto(`/apps/${id}/metrics`);
      const cpu = page.getByRole('img', { name: /^CPU over the last hour, now \d+(\.\d)?%$/ });
      await expect(cpu).toBeVisible();
      await expect(page.getByRole('img', { name: /^Memory over the last hour, now [\d.]+ \w+ of [\d.]+ \w+ \(\d+%\)$/ })).toBeVisible();
      await expect(page.getByRole('img', { name: /^Network over the last hour, now in [\d.]+ \w+\/s, out [\d.]+ \w+\/s$/ })).toBeVisible();
      await expect(page.getByRole('img', { name: /^Disk over the last hour, now / })).toBeVisible();
      const points = await cpu.locator('polyline[data-series="cpu"]').first().getAttribute('points');
      expect(points?.split(' ').length).toBeGreaterThanOrEqual(3);
      // The newest sample is at the right edge.
      expect(points?.split(' ').at(-1)).toMatch(/^300,/);
      const cpuCard = page.locator('section').filter({ has: page.getByRole('heading', { name: 'CPU', level: 3 }) });
      await expect(cpuCard.locator('dl')).toContainText(/Now\s*\d/);
      await expect(cpuCard.locator('dl')).toContainText(/Max\s*\d/);
      const memCard = page.locator('section').filter({ has: page.getByRole('heading', { name: 'Memory', level: 3 }) });
      await expect(memCard.locator('.now')).toHaveText(/ of /);
      await auditPage(page, 'app-metrics');
    } finally {
      await api.delete(`/api/v1/apps/${id}`);
    }
  });
});
