import { describe, expect, it } from 'vitest';
import { render, screen } from '@testing-library/svelte';
import type { Schemas } from '../../lib/api';
import {
  fetchAll,
  fromRFC3339,
  grpcGuess,
  installCommand,
  limitText,
  listText,
  mergePatch,
  pageCount,
  quotaFromText,
  quotaText,
  reservationKind,
  shellQuote,
  toRFC3339,
  usageByNode,
  usageByOwner,
} from './admin';
import QuotaFields from './QuotaFields.svelte';

const app = (owner: string, node: string, cores: number, memory_mb: number, disk_gb: number) =>
  ({ id: `app_${owner}${node}${cores}`, status: 'running', hostname: 'h', vmid: 1, node, owner, resources: { cores, memory_mb, disk_gb } }) as Schemas['App'];

describe('installCommand', () => {
  it('writes the flags proximityctl node install takes, with --node for a named token', () => {
    expect(installCommand({ target: 'root@pve4', token: 'pxj_a_b', coordinators: '10.0.0.5:7073, 10.0.0.6:7073', pkg: 'dist/a.deb', node: 'pve4' })).toBe(
      'proximityctl node install root@pve4 --join-token pxj_a_b --coordinator 10.0.0.5:7073,10.0.0.6:7073 --package dist/a.deb --node pve4',
    );
  });
  it('quotes what a shell would split, and fills what is missing with placeholders', () => {
    expect(installCommand({ target: '', token: 'pxj_x', coordinators: '', pkg: 'my agent.deb' })).toBe(
      "proximityctl node install root@NODE --join-token pxj_x --coordinator HOST:7073 --package 'my agent.deb'",
    );
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('')).toBe("''");
  });
  it('guesses the agents port beside the API host', () => {
    expect(grpcGuess('10.0.0.5:7070')).toBe('10.0.0.5:7073');
    expect(grpcGuess('[::1]:7070')).toBe('[::1]:7073');
    expect(grpcGuess('')).toBe('');
  });
});

describe('mergePatch', () => {
  it('keeps only the fields that changed, lists compared whole', () => {
    const before = { subnet: '', gateway: '', dns: ['1.1.1.1'], bridge: 'vmbr0' };
    expect(mergePatch(before, { ...before, gateway: '10.0.0.1', dns: ['1.1.1.1', '9.9.9.9'] })).toEqual({
      gateway: '10.0.0.1',
      dns: ['1.1.1.1', '9.9.9.9'],
    });
    expect(mergePatch(before, { ...before })).toEqual({});
  });
  it('compares nested objects by value', () => {
    const b = { retention: { keep_last: 1 }, mode: 'snapshot' };
    expect(mergePatch(b, { retention: { keep_last: 2 }, mode: 'snapshot' })).toEqual({ retention: { keep_last: 2 } });
  });
});

describe('quota forms', () => {
  const defaults = { max_apps: 5, max_cores: 8, max_memory_mb: 0, max_disk_gb: 100 };
  it('reads every field empty as the default quota (null)', () => {
    expect(quotaFromText(quotaText(null), defaults)).toEqual({ quota: null, errors: {} });
  });
  it('fills a field left empty beside others with the default', () => {
    const t = { ...quotaText(null), max_apps: '3' };
    expect(quotaFromText(t, defaults).quota).toEqual({ max_apps: 3, max_cores: 8, max_memory_mb: 0, max_disk_gb: 100 });
  });
  it('names a field that is not a whole number', () => {
    const t = { ...quotaText(null), max_cores: '-1', max_disk_gb: '2.5' };
    const r = quotaFromText(t, defaults);
    expect(r.quota).toBeNull();
    expect(Object.keys(r.errors).sort()).toEqual(['max_cores', 'max_disk_gb']);
  });
  it('shows a quota as text and 0 as 0', () => {
    expect(quotaText({ max_apps: 0, max_cores: 2 })).toEqual({ max_apps: '0', max_cores: '2', max_memory_mb: '', max_disk_gb: '' });
  });
  it('reads a limit: 0 is unlimited', () => {
    expect(limitText(2, 5)).toBe('2 of 5');
    expect(limitText(2, 0, 'GB')).toBe('2 GB (no limit)');
    expect(limitText(1, undefined)).toBe('1 (no limit)');
  });
});

describe('usage', () => {
  const apps = [app('u1', 'pve1', 2, 512, 4), app('u1', 'pve2', 1, 256, 2), app('u2', 'pve1', 4, 1024, 8)];
  it('sums each owner', () => {
    expect(usageByOwner(apps).get('u1')).toEqual({ apps: 2, cores: 3, memory_mb: 768, disk_gb: 6 });
    expect(usageByOwner(apps).get('u3')).toBeUndefined();
  });
  it('counts each node', () => {
    expect(usageByNode(apps).get('pve1')).toEqual({ apps: 2, cores: 6 });
  });
});

describe('small readers', () => {
  it('tells a reservation owner kind', () => {
    expect(reservationKind('app:app_1')).toBe('app');
    expect(reservationKind('user:admin')).toBe('user');
    expect(reservationKind('')).toBe('other');
    expect(reservationKind(undefined)).toBe('other');
  });
  it('splits lists on commas and lines', () => {
    expect(listText(' openid, profile\nemail,, ')).toEqual(['openid', 'profile', 'email']);
  });
  it('round-trips a time through datetime-local', () => {
    const t = '2026-05-04T03:02:00.000Z';
    expect(toRFC3339(fromRFC3339(t))).toBe(t);
    expect(toRFC3339('')).toBe('');
    expect(fromRFC3339('nonsense')).toBe('');
  });
  it('counts pages', () => {
    expect(pageCount(0, 50)).toBe(1);
    expect(pageCount(101, 50)).toBe(3);
  });
});

describe('fetchAll', () => {
  it('reads pages until the total', async () => {
    const all = Array.from({ length: 250 }, (_, i) => i);
    const asked: number[] = [];
    const got = await fetchAll(async (page) => {
      asked.push(page);
      return { items: all.slice((page - 1) * 100, page * 100), total: all.length };
    });
    expect(got).toEqual(all);
    expect(asked).toEqual([1, 2, 3]);
  });
  it('stops on an empty page', async () => {
    expect(await fetchAll(async () => ({ items: [], total: 10 }))).toEqual([]);
  });
});

describe('QuotaFields', () => {
  it('labels each limit and shows the default as placeholder and an error beside its field', () => {
    render(QuotaFields, {
      props: { value: quotaText(null), errors: { max_cores: 'too many' }, placeholder: { max_apps: '5' }, hint: 'empty is the default' },
    });
    expect(screen.getByLabelText('Apps').getAttribute('placeholder')).toBe('5');
    const cores = screen.getByLabelText('Cores');
    expect(cores.getAttribute('aria-invalid')).toBe('true');
    expect(document.getElementById(cores.getAttribute('aria-describedby') ?? '')?.textContent).toBe('too many');
    expect(screen.getByLabelText('Memory (MiB)')).toBeTruthy();
    expect(screen.getByLabelText('Disk (GB)')).toBeTruthy();
  });
});
