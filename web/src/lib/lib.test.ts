import { describe, expect, it } from 'vitest';
import { ApiError, fieldErrors } from './api';
import { ago, bytes, duration, percent } from './format';
import { match } from './router.svelte';

describe('match', () => {
  it('answers the params of a matching path, decoded', () => {
    expect(match('/apps/:id/:tab', '/apps/app_1/logs')).toEqual({ id: 'app_1', tab: 'logs' });
    expect(match('/catalog/:source/:id', '/catalog/my%20store/nextcloud')).toEqual({ source: 'my store', id: 'nextcloud' });
  });
  it('answers null for another path', () => {
    expect(match('/apps/:id', '/apps')).toBeNull();
    expect(match('/apps/:id', '/apps/a/b')).toBeNull();
    expect(match('/admin/users', '/admin/nodes')).toBeNull();
    expect(match('/apps/:id', '/apps/%E0%A4%A')).toBeNull();
  });
});

describe('fieldErrors', () => {
  it('reads every field a problem names', () => {
    expect(fieldErrors('settings.PORT: 99999 is above the maximum 65535; settings.ADMIN_EMAIL: required')).toEqual({
      'settings.PORT': '99999 is above the maximum 65535',
      'settings.ADMIN_EMAIL': 'required',
    });
    expect(fieldErrors('hostname: must be 1-63 letters, digits and hyphens')).toEqual({
      hostname: 'must be 1-63 letters, digits and hyphens',
    });
  });
  it('reads nothing from a detail that names no field', () => {
    expect(fieldErrors('app app_1 does not exist')).toEqual({});
  });
  it('ApiError takes the problem document', () => {
    const e = new ApiError(409, { type: 'urn:proximity:problem:capacity', title: 'Conflict', status: 409, detail: 'no node fits', request_id: 'req_1' });
    expect([e.status, e.type, e.message, e.requestId]).toEqual([409, 'capacity', 'no node fits', 'req_1']);
    expect(new ApiError(502, 'not json').message).toBe('request failed with status 502');
  });
});

describe('format', () => {
  it('renders sizes, fractions, durations and ages', () => {
    expect(bytes(0)).toBe('0 B');
    expect(bytes(1536)).toBe('1.5 KiB');
    expect(bytes(8 * 1024 ** 3)).toBe('8.0 GiB');
    expect(bytes(null)).toBe('—');
    expect(percent(0.4242)).toBe('42%');
    expect(duration(3 * 86400 + 4 * 3600)).toBe('3d 4h');
    expect(duration(42)).toBe('42s');
    const now = Date.parse('2026-11-30T12:00:00Z');
    expect(ago('2026-11-30T11:57:00Z', now)).toBe('3 min ago');
    expect(ago('2026-01-01T00:00:00Z', now)).toBe('2026-01-01');
  });
});
