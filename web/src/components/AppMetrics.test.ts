import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { render, screen, waitFor } from '@testing-library/svelte';
import type { Schemas } from '../lib/api';

const api = vi.hoisted(() => ({ GET: vi.fn() }));
vi.mock('../lib/api', async (orig) => ({ ...(await orig<typeof import('../lib/api')>()), client: api }));

import AppMetrics from './AppMetrics.svelte';
import LineChart from './metrics/LineChart.svelte';

const t0 = Date.parse('2026-11-30T10:00:00Z');
const MiB = 1 << 20;

function metrics(n: number, o: Partial<Schemas['Metrics']> = {}): Schemas['Metrics'] {
  const history = Array.from({ length: n }, (_, i) => ({
    at: new Date(t0 + i * 5000).toISOString(),
    status: 'running',
    cpu: 0.1 + i / 100,
    mem: 64 * MiB + i * MiB,
    max_mem: 256 * MiB,
    disk: 500 * MiB,
    max_disk: 2048 * MiB,
    net_in: i * 5120, // 1 KiB/s
    net_out: i * 2560, // 512 B/s
  }));
  const last = history.at(-1);
  return {
    status: 'running',
    cpu: last?.cpu ?? null,
    mem: last?.mem ?? null,
    max_mem: 256 * MiB,
    disk: 500 * MiB,
    max_disk: 2048 * MiB,
    net_in: last?.net_in ?? null,
    net_out: last?.net_out ?? null,
    uptime: 100,
    reported_at: last?.at ?? null,
    history,
    ...o,
  };
}

const answer = (m: Schemas['Metrics']) => ({ data: m, response: new Response(null, { status: 200 }) });

beforeEach(() => api.GET.mockReset());
afterEach(() => vi.useRealTimers());

describe('AppMetrics', () => {
  it('asks for the last hour of the app and draws the four charts with their values', async () => {
    api.GET.mockResolvedValue(answer(metrics(10)));
    render(AppMetrics, { id: 'app_1' });
    await screen.findByRole('heading', { name: 'CPU' });
    expect(api.GET).toHaveBeenCalledWith('/api/v1/apps/{id}/metrics', { params: { path: { id: 'app_1' }, query: { range: '1h' } } });
    const imgs = screen.getAllByRole('img').map((e) => e.getAttribute('aria-label'));
    expect(imgs).toEqual([
      'CPU over the last hour, now 19%',
      'Memory over the last hour, now 73 MiB of 256 MiB (29%)',
      'Network over the last hour, now in 1.0 KiB/s, out 512 B/s',
      'Disk over the last hour, now 500 MiB of 2.0 GiB (24%)',
    ]);
    for (const name of ['CPU', 'Memory', 'Network', 'Disk']) expect(screen.getByRole('heading', { name, level: 3 })).toBeTruthy();
    // CPU: one line of 10 points; network: in and out of 9 rates each.
    const cpu = document.querySelector('[data-series="cpu"]')?.getAttribute('points')?.split(' ');
    expect(cpu).toHaveLength(10);
    expect(document.querySelector('[data-series="in"]')?.getAttribute('points')?.split(' ')).toHaveLength(9);
    expect(document.querySelector('[data-series="out"]')?.classList.contains('second')).toBe(true);
    // The newest point is at the right edge; the oldest 45 s before it.
    expect(cpu?.at(-1)?.startsWith('300,')).toBe(true);
    expect(cpu?.[0].startsWith(`${Math.round(((3600 - 45) / 3600) * 300 * 10) / 10},`)).toBe(true);
    // The values as text: now, min and max.
    const stats = (h: string) =>
      [...(screen.getByRole('heading', { name: h }).closest('section')?.querySelectorAll('dl div') ?? [])].map(
        (d) => `${d.querySelector('dt')?.textContent}: ${d.querySelector('dd')?.textContent}`,
      );
    expect(stats('CPU')).toEqual(['Now: 19%', 'Min: 10%', 'Max: 19%']);
    expect(stats('Memory')).toEqual(['Now: 73 MiB', 'Min: 64 MiB', 'Max: 73 MiB']);
    expect(stats('Network')).toEqual(['In, range: 1.0 KiB/s to 1.0 KiB/s', 'Out, range: 512 B/s to 512 B/s']);
    expect(stats('Disk')).toEqual(['Now: 500 MiB', 'Min: 500 MiB', 'Max: 500 MiB']);
  });

  it('says there is no data yet, with the values now when there are some', async () => {
    api.GET.mockResolvedValue(answer(metrics(0, { status: 'running', cpu: 0.05, mem: 10 * MiB, max_mem: 100 * MiB })));
    render(AppMetrics, { id: 'app_1' });
    expect(await screen.findByText('No data yet.')).toBeTruthy();
    expect(screen.queryAllByRole('img')).toHaveLength(0);
    expect(document.body.textContent).toContain('Now: CPU 5.0%, memory 10 MiB of 100 MiB (10%)');
  });

  it('refreshes every 15 s and stops when it goes', async () => {
    vi.useFakeTimers();
    api.GET.mockResolvedValue(answer(metrics(3)));
    const { unmount } = render(AppMetrics, { id: 'app_1' });
    await vi.waitFor(() => expect(api.GET).toHaveBeenCalledTimes(1));
    await vi.advanceTimersByTimeAsync(14_000);
    expect(api.GET).toHaveBeenCalledTimes(1);
    api.GET.mockResolvedValue(answer(metrics(4)));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(api.GET).toHaveBeenCalledTimes(2);
    await vi.waitFor(() => expect(document.querySelector('[data-series="cpu"]')?.getAttribute('points')?.split(' ')).toHaveLength(4));
    unmount();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(api.GET).toHaveBeenCalledTimes(2);
  });

  it('shows an error and keeps the charts it had', async () => {
    vi.useFakeTimers();
    api.GET.mockResolvedValue(answer(metrics(5)));
    render(AppMetrics, { id: 'app_1' });
    await vi.waitFor(() => expect(screen.getAllByRole('img')).toHaveLength(4));
    api.GET.mockResolvedValue({ error: { detail: 'the leader is away' }, response: new Response(null, { status: 503 }) });
    await vi.advanceTimersByTimeAsync(15_000);
    await vi.waitFor(() => expect(screen.getByRole('alert').textContent).toContain('the leader is away'));
    expect(screen.getAllByRole('img')).toHaveLength(4);
  });
});

describe('LineChart', () => {
  const w = { from: t0, to: t0 + 100_000 };
  it('draws a line per run, a fill under the first series, and a dash for a lone point', async () => {
    render(LineChart, {
      label: 'Test over the last hour, now 5',
      top: 10,
      window: w,
      series: [
        {
          name: 'a',
          points: [
            { t: t0, v: 0 },
            { t: t0 + 50_000, v: 10 },
            { t: t0 + 50_001, v: null },
            { t: t0 + 100_000, v: 5 },
          ],
        },
      ],
    });
    const svg = screen.getByRole('img', { name: 'Test over the last hour, now 5' });
    const lines = [...svg.querySelectorAll('polyline')].map((l) => l.getAttribute('points'));
    expect(lines).toEqual(['0,80 150,0', '298.5,40 300,40']);
    expect(svg.querySelectorAll('polygon')).toHaveLength(1);
    expect(svg.getAttribute('style')).toBeNull();
    await waitFor(() => expect(svg.getAttribute('viewBox')).toBe('0 0 300 80'));
  });
});
