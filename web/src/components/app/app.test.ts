import { describe, expect, it } from 'vitest';
import { render, screen } from '@testing-library/svelte';
import type { App } from '../../lib/api';
import { allowed, catalogPath, mainURL, Seen, tabOf, withApp } from './app';
import AppActions from './AppActions.svelte';

const base: App = {
  id: 'app_1',
  status: 'running',
  hostname: 'vault',
  vmid: 100,
  node: 'pve1',
  owner: 'usr_1',
  urls: [
    { name: 'admin', url: 'http://10.0.0.1:30001', main: false },
    { name: 'http', url: 'http://10.0.0.1:30000', main: true },
  ],
  update_available: null,
};

const app = (over: Partial<App>): App => ({ ...base, ...over });
const sorted = (s: Set<string>) => [...s].sort();

describe('allowed', () => {
  it('a running app can be opened, stopped, restarted, backed up, cloned and deleted', () => {
    expect(sorted(allowed(base))).toEqual(['backup', 'clone', 'delete', 'open', 'restart', 'stop']);
  });
  it('a stopped app can be started, not stopped or opened', () => {
    expect(sorted(allowed(app({ status: 'stopped' })))).toEqual(['backup', 'clone', 'delete', 'start']);
  });
  it('Update only when the catalog offers a newer version', () => {
    expect(allowed(app({ update_available: '1.2.0' })).has('update')).toBe(true);
    expect(allowed(app({ update_available: null })).has('update')).toBe(false);
    expect(allowed(app({ status: 'updating', operation: 'update', update_available: '1.2.0' })).has('update')).toBe(false);
  });
  it('an operation in progress allows only cancel, delete and open', () => {
    expect(sorted(allowed(app({ status: 'restarting', operation: 'restart' })))).toEqual(['cancel', 'delete', 'open']);
    expect(sorted(allowed(app({ status: 'deploying', operation: 'deploy' })))).toEqual(['cancel', 'delete']);
  });
  it('an app in error can be started, stopped or deleted; a deleting one nothing', () => {
    expect(sorted(allowed(app({ status: 'error' })))).toEqual(['delete', 'start', 'stop']);
    expect(allowed(app({ status: 'deleting', operation: 'delete' })).size).toBe(0);
  });
  it('no Open without an address', () => {
    expect(allowed(app({ urls: [] })).has('open')).toBe(false);
  });
});

describe('helpers', () => {
  it('mainURL takes the main URL, else the first, else none', () => {
    expect(mainURL(base)).toBe('http://10.0.0.1:30000');
    expect(mainURL(app({ urls: [{ name: 'a', url: 'http://x:1', main: false }] }))).toBe('http://x:1');
    expect(mainURL(app({ urls: undefined }))).toBe('');
  });
  it('catalogPath splits a source entry', () => {
    expect(catalogPath('gotify')).toEqual({ id: 'gotify' });
    expect(catalogPath('mystore/gotify')).toEqual({ source: 'mystore', id: 'gotify' });
  });
  it('tabOf knows the tabs', () => {
    expect(tabOf('')).toBe('');
    expect(tabOf('logs')).toBe('logs');
    expect(tabOf('nope')).toBeNull();
  });
  it('withApp replaces in place, adds only when asked', () => {
    const list = [base, app({ id: 'app_2' })];
    expect(withApp(list, app({ status: 'stopped' }), false).map((a) => a.status)).toEqual(['stopped', 'running']);
    expect(withApp(list, app({ id: 'app_3' }), false)).toBe(list);
    expect(withApp(list, app({ id: 'app_3' }), true).map((a) => a.id)).toEqual(['app_1', 'app_2', 'app_3']);
  });
  it('Seen: an answer is stale once an event came after its stamp', () => {
    const s = new Seen();
    const st = s.stamp('a');
    expect(s.fresh('a', st)).toBe(true);
    s.event('b');
    expect(s.fresh('a', st)).toBe(true);
    s.event('a');
    expect(s.fresh('a', st)).toBe(false);
  });
});

describe('AppActions', () => {
  const props = (a: App) => ({ app: a, ask: () => {}, stamp: () => 0, onapp: () => {}, onerror: () => {}, onnotice: () => {} });
  const button = (name: string) => screen.getByRole('button', { name });

  it('has the action names people look for, enabled by status', () => {
    render(AppActions, props(app({ status: 'stopped' })));
    expect(button('Start')).toBeTruthy();
    expect((button('Start') as HTMLButtonElement).disabled).toBe(false);
    for (const n of ['Stop', 'Restart', 'Update', 'Open']) expect((button(n) as HTMLButtonElement).disabled).toBe(true);
    for (const n of ['Back up', 'Clone', 'Delete']) expect((button(n) as HTMLButtonElement).disabled).toBe(false);
  });
  it('Open links to the main URL in a new tab; Update shows the version', () => {
    render(AppActions, props(app({ update_available: '2.0.0' })));
    const open = screen.getByRole('link', { name: 'Open' });
    expect(open.getAttribute('href')).toBe('http://10.0.0.1:30000');
    expect(open.getAttribute('target')).toBe('_blank');
    expect((button('Update') as HTMLButtonElement).disabled).toBe(false);
    expect(screen.getByText('2.0.0 available')).toBeTruthy();
  });
});
