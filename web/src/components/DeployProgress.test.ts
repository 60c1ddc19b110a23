import { beforeEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import type { App } from '../lib/api';

const api = vi.hoisted(() => ({ GET: vi.fn(), POST: vi.fn() }));
const events = vi.hoisted(() => ({ listeners: [] as ((name: string, data: unknown) => void)[] }));
vi.mock('../lib/api', async (orig) => ({ ...(await orig<typeof import('../lib/api')>()), client: api }));
vi.mock('../lib/events', () => ({
  listen: (f: (name: string, data: unknown) => void) => {
    events.listeners.push(f);
    return () => events.listeners.splice(events.listeners.indexOf(f), 1);
  },
}));

import DeployProgress from './DeployProgress.svelte';

const base: App = { id: 'app_1', status: 'deploying', hostname: 'vault', vmid: 100, node: 'pve1', owner: 'usr_1', operation: 'deploy', step: 'create' };
const emit = (data: Partial<App>) => events.listeners.forEach((l) => l('app', { ...base, ...data }));
const items = () => [...document.querySelectorAll('ol.steps li')].map((li) => `${li.className.split(' ')[0]} ${li.textContent?.trim().replace(/\s+/g, ' ')}`);

beforeEach(() => {
  api.POST.mockReset();
  events.listeners.length = 0;
});

describe('DeployProgress', () => {
  it('lists the steps as they come, in a live region, with Cancel', async () => {
    const { rerender } = render(DeployProgress, { app: base });
    expect(screen.getByRole('heading', { name: 'Deploying vault' })).toBeTruthy();
    expect(document.querySelector('ol.steps')?.closest('[aria-live="polite"]')).not.toBeNull();
    expect(items()[0]).toBe('current … Create the container (in progress)');
    await rerender({ app: { ...base, step: 'docker' } });
    expect(items().slice(0, 4)).toEqual([
      'done ✓ Create the container (done)',
      'done ✓ Wait for its network (done)',
      'current … Install Docker (in progress)',
      'pending ○ Write the Compose file (to do)',
    ]);
    expect(document.querySelector('[aria-current="step"]')?.textContent).toContain('Install Docker');
    expect(screen.getByRole('button', { name: 'Cancel' })).toBeTruthy();
    expect(screen.queryByRole('link', { name: 'Open' })).toBeNull();
  });

  it('shows Open to the main URL once running', async () => {
    const { rerender } = render(DeployProgress, { app: base });
    await rerender({
      app: {
        ...base,
        status: 'running',
        operation: '',
        step: '',
        urls: [
          { name: 'admin', url: 'http://10.0.0.5:30001', main: false },
          { name: 'http', url: 'http://10.0.0.5:30000', main: true },
        ],
      },
    });
    expect(screen.getByRole('heading', { name: 'vault is running' })).toBeTruthy();
    const open = screen.getByRole('link', { name: 'Open' });
    expect(open.getAttribute('href')).toBe('http://10.0.0.5:30000');
    expect(open.getAttribute('target')).toBe('_blank');
    expect(open.getAttribute('rel')).toContain('noopener');
    expect(items()).toHaveLength(8);
    expect(items().every((i) => i.startsWith('done'))).toBe(true);
    expect(screen.queryByRole('button', { name: 'Cancel' })).toBeNull();
  });

  it('catches steps from the events, then shows the reason it failed', async () => {
    const { rerender } = render(DeployProgress, { app: base });
    emit({ step: 'network' });
    emit({ step: 'docker' });
    emit({ id: 'app_2', step: 'health' } as Partial<App>);
    await rerender({ app: { ...base, step: 'cleanup' } });
    expect(screen.getByRole('heading', { name: 'Deploy failed: cleaning up' })).toBeTruthy();
    // No cancel while the undo runs (the API refuses it).
    expect(screen.queryByRole('button', { name: 'Cancel' })).toBeNull();
    const error = 'docker: the install failed; the container was removed and its reservation freed';
    await rerender({ app: { ...base, status: 'error', operation: '', step: '', error } });
    expect(items()).toEqual([
      'done ✓ Create the container (done)',
      'done ✓ Wait for its network (done)',
      'failed ✗ Install Docker (failed)',
      'done ✓ Remove what was made (done)',
    ]);
    expect(screen.getByRole('heading', { name: 'Deploy failed' })).toBeTruthy();
    expect(screen.getByRole('alert').textContent).toContain(error);
    expect(screen.getByRole('alert').textContent).toContain('Cleaned up: the container was removed');
    expect(screen.queryByRole('link', { name: 'Open' })).toBeNull();
  });

  it('says nothing was cleaned up while the cleanup has not run', async () => {
    render(DeployProgress, { app: { ...base, status: 'error', operation: '', step: '', error: 'create failed' } });
    expect(screen.getByRole('alert').textContent).toContain('create failed');
    expect(screen.getByRole('alert').textContent).not.toContain('Cleaned up');
  });

  it('cancels with the action the API takes, and says why a cancel failed', async () => {
    api.POST.mockReturnValueOnce(Promise.resolve({ data: base, response: { ok: true, status: 202 } as Response }));
    render(DeployProgress, { app: base });
    await fireEvent.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(api.POST).toHaveBeenCalledWith('/api/v1/apps/{id}/actions', { params: { path: { id: 'app_1' } }, body: { action: 'cancel' } });
    api.POST.mockReturnValueOnce(
      Promise.resolve({ error: { status: 409, detail: 'no operation runs' }, response: { ok: false, status: 409 } as Response }),
    );
    await fireEvent.click(screen.getByRole('button', { name: 'Cancel' }));
    await waitFor(() => expect(screen.getByRole('alert').textContent).toContain('no operation runs'));
  });
});
