import { beforeEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import type { Entry } from './deploy';

const api = vi.hoisted(() => ({ GET: vi.fn(), POST: vi.fn() }));
const nav = vi.hoisted(() => ({ navigate: vi.fn() }));
vi.mock('../../lib/api', async (orig) => ({ ...(await orig<typeof import('../../lib/api')>()), client: api }));
vi.mock('../../lib/router.svelte', async (orig) => ({ ...(await orig<typeof import('../../lib/router.svelte')>()), navigate: nav.navigate }));

import DeployForm from './DeployForm.svelte';
import { session } from '../../lib/session.svelte';

const answer = (status: number, body: unknown) =>
  Promise.resolve({ data: status < 400 ? body : undefined, error: status >= 400 ? body : undefined, response: { ok: status < 400, status } as Response });

const entry: Entry = {
  id: 'vaultwarden',
  source: 'builtin',
  name: 'Vaultwarden',
  version: '1.32.7',
  compose: '',
  health_check: {},
  ports: [],
  resources: { cores: 1, memory_mb: 512, disk_gb: 4 },
  settings: [
    { name: 'DOMAIN', type: 'url', label: 'Domain', required: false, default: 'http://localhost' },
    { name: 'SIGNUPS_ALLOWED', type: 'bool', label: 'Allow sign-ups', required: false, default: 'false' },
    { name: 'ADMIN_TOKEN', type: 'secret', label: 'Admin token', required: false, min: 16, max: 128, generate: 48 },
  ],
};

const deploy = () => fireEvent.click(screen.getByRole('button', { name: 'Deploy' }));

beforeEach(() => {
  api.GET.mockReset();
  api.POST.mockReset();
  nav.navigate.mockReset();
  session.me = { id: 'usr_1', name: 'casey', role: 'user' } as typeof session.me;
});

describe('DeployForm', () => {
  it('checks the form before it sends anything, and focuses the first error', async () => {
    render(DeployForm, { entry });
    await fireEvent.input(screen.getByLabelText('Admin token'), { target: { value: 'short' } });
    await deploy();
    const host = screen.getByLabelText(/Hostname/);
    await waitFor(() => expect(document.activeElement).toBe(host));
    expect(host.getAttribute('aria-invalid')).toBe('true');
    expect(host.getAttribute('aria-describedby')).toBe('hostname-hint hostname-error');
    expect(document.getElementById('setting-ADMIN_TOKEN-error')?.textContent).toMatch(/At least 16 characters/);
    expect(api.POST).not.toHaveBeenCalled();
    // A user is offered only the automatic node, and no admin route is asked.
    expect([...(screen.getByLabelText('Node') as HTMLSelectElement).options].map((o) => o.text)).toEqual(['Automatic']);
    expect(api.GET).not.toHaveBeenCalled();
  });

  it('sends the settings and resources, and opens the new app', async () => {
    api.POST.mockReturnValue(answer(202, { id: 'app_1', status: 'deploying' }));
    render(DeployForm, { entry });
    await fireEvent.input(screen.getByLabelText(/Hostname/), { target: { value: 'vault' } });
    await fireEvent.click(screen.getByLabelText('Allow sign-ups'));
    await fireEvent.input(screen.getByLabelText('Cores'), { target: { value: '2' } });
    await deploy();
    await waitFor(() => expect(nav.navigate).toHaveBeenCalledWith('/apps/app_1'));
    expect(api.POST).toHaveBeenCalledWith('/api/v1/apps', {
      body: {
        catalog_id: 'vaultwarden',
        hostname: 'vault',
        settings: { DOMAIN: 'http://localhost', SIGNUPS_ALLOWED: 'true' },
        resources: { cores: 2, memory_mb: 512, disk_gb: 4 },
      },
    });
  });

  it("shows the API's 400 under the fields it names", async () => {
    api.POST.mockReturnValue(
      answer(400, { type: 'urn:proximity:problem:invalid', status: 400, detail: 'settings.DOMAIN: "http://x" is refused; hostname: taken by a test' }),
    );
    render(DeployForm, { entry });
    await fireEvent.input(screen.getByLabelText(/Hostname/), { target: { value: 'vault' } });
    await deploy();
    await waitFor(() => expect(document.getElementById('setting-DOMAIN-error')?.textContent).toBe('"http://x" is refused'));
    expect(screen.getByLabelText('Domain').getAttribute('aria-invalid')).toBe('true');
    expect(screen.getByLabelText('Domain').getAttribute('aria-describedby')).toContain('setting-DOMAIN-error');
    expect(document.getElementById('hostname-error')?.textContent).toBe('taken by a test');
    expect(screen.queryByRole('alert')).toBeNull();
    expect(nav.navigate).not.toHaveBeenCalled();
  });

  it('shows any other refusal above the button', async () => {
    api.POST.mockReturnValue(answer(409, { type: 'urn:proximity:problem:capacity', status: 409, detail: 'no node has room for 1 core, 512 MB, 4 GB' }));
    render(DeployForm, { entry });
    await fireEvent.input(screen.getByLabelText(/Hostname/), { target: { value: 'vault' } });
    await deploy();
    expect((await screen.findByRole('alert')).textContent).toContain('no node has room');
    expect(screen.getByLabelText(/Hostname/).getAttribute('aria-invalid')).toBeNull();
  });

  it("offers an admin the cluster's nodes", async () => {
    session.me = { id: 'usr_0', name: 'admin', role: 'admin' } as typeof session.me;
    api.GET.mockReturnValue(answer(200, { items: [{ name: 'pve1', status: 'ready' }, { name: 'pve2', status: 'down' }], total: 2, page: 1, per_page: 100 }));
    render(DeployForm, { entry });
    await waitFor(() => expect((screen.getByLabelText('Node') as HTMLSelectElement).options).toHaveLength(3));
    const opts = [...(screen.getByLabelText('Node') as HTMLSelectElement).options];
    expect(opts.map((o) => [o.text, o.disabled])).toEqual([['Automatic', false], ['pve1', false], ['pve2 (down)', true]]);
    expect(api.GET).toHaveBeenCalledWith('/api/v1/nodes', { params: { query: { per_page: 100 } } });
  });
});
