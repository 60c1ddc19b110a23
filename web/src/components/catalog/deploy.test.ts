import { describe, expect, it } from 'vitest';
import { apiErrors, checkHostname, checkResource, checkSetting, constraint, entryHref, initialForm, request, validate, type Entry, type Setting } from './deploy';

const s = (x: Partial<Setting>): Setting => ({ name: 'X', type: 'string', label: 'X', required: false, ...x });

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
    s({ name: 'DOMAIN', type: 'url', label: 'Domain', default: 'http://localhost' }),
    s({ name: 'SIGNUPS_ALLOWED', type: 'bool', label: 'Allow sign-ups', default: 'false' }),
    s({ name: 'ADMIN_TOKEN', type: 'secret', label: 'Admin token', min: 16, max: 128, generate: 48 }),
    s({ name: 'PORT', type: 'port', label: 'Port', required: true }),
  ],
};

describe('checkSetting', () => {
  it('requires a required value without a default, but not a generated secret', () => {
    expect(checkSetting(s({ required: true }), '')).toBe('Required.');
    expect(checkSetting(s({ required: true, default: 'x' }), '')).toBe('');
    expect(checkSetting(s({ type: 'secret', required: true, generate: 32 }), '')).toBe('');
    expect(checkSetting(s({}), '')).toBe('');
  });
  it('checks whole numbers and their range as the API does', () => {
    const n = s({ type: 'int', min: 2, max: 10 });
    expect(checkSetting(n, '5')).toBe('');
    expect(checkSetting(n, '05')).toMatch(/whole number/);
    expect(checkSetting(n, '1.5')).toMatch(/whole number/);
    expect(checkSetting(n, '1')).toBe('At least 2.');
    expect(checkSetting(n, '11')).toBe('At most 10.');
    expect(checkSetting(s({ type: 'port' }), '65536')).toMatch(/between 1 and 65535/);
    expect(checkSetting(s({ type: 'port' }), 'http')).toMatch(/port number/);
    expect(checkSetting(s({ type: 'port', min: 1024 }), '80')).toBe('At least 1024.');
  });
  it('checks booleans, options, e-mail addresses and URLs', () => {
    expect(checkSetting(s({ type: 'bool' }), 'yes')).toMatch(/true or false/);
    expect(checkSetting(s({ type: 'bool' }), 'true')).toBe('');
    expect(checkSetting(s({ type: 'enum', options: ['a', 'b'] }), 'c')).toBe('One of a, b.');
    expect(checkSetting(s({ type: 'enum', options: ['a', 'b'] }), 'b')).toBe('');
    expect(checkSetting(s({ type: 'email' }), 'ann@example.org')).toBe('');
    expect(checkSetting(s({ type: 'email' }), 'ann at example.org')).toMatch(/e-mail/);
    expect(checkSetting(s({ type: 'url' }), 'https://vault.example.org')).toBe('');
    expect(checkSetting(s({ type: 'url' }), 'ftp://example.org')).toMatch(/http/);
    expect(checkSetting(s({ type: 'url' }), 'example.org')).toMatch(/http/);
  });
  it('counts characters, not bytes, and applies the pattern whole', () => {
    const t = s({ type: 'secret', min: 16, max: 20 });
    expect(checkSetting(t, 'short')).toBe('At least 16 characters (5 now).');
    expect(checkSetting(t, 'ü'.repeat(16))).toBe('');
    expect(checkSetting(t, 'x'.repeat(21))).toMatch(/At most 20/);
    const tz = s({ pattern: '[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*' });
    expect(checkSetting(tz, 'Europe/Berlin')).toBe('');
    expect(checkSetting(tz, 'Europe/Berlin x')).toMatch(/pattern/);
  });
  it('refuses what a Compose .env file cannot hold', () => {
    expect(checkSetting(s({}), "it's")).toMatch(/single quote/);
    expect(checkSetting(s({}), 'a\\')).toMatch(/backslash/);
    expect(checkSetting(s({}), 'a\u0001b')).toMatch(/control/);
    expect(checkSetting(s({}), 'a\tb')).toBe('');
  });
});

describe('the rest of the form', () => {
  it('checks the hostname like the API: one lower-case label of at most 63', () => {
    expect(checkHostname('vault-1')).toBe('');
    expect(checkHostname('')).toBe('Required.');
    expect(checkHostname('Vault')).toMatch(/Lower-case/);
    expect(checkHostname('-vault')).toMatch(/Lower-case/);
    expect(checkHostname('a.b')).toMatch(/Lower-case/);
    expect(checkHostname('a'.repeat(63))).toBe('');
    expect(checkHostname('a'.repeat(64))).toMatch(/63/);
    expect(checkHostname('123')).toMatch(/digits/);
  });
  it('checks the resources against the API bounds', () => {
    expect(checkResource('cores', '2')).toBe('');
    expect(checkResource('cores', '65')).toBe('Between 1 and 64.');
    expect(checkResource('memory_mb', '64')).toBe('Between 128 and 262144.');
    expect(checkResource('disk_gb', '')).toMatch(/whole number/);
  });
  it('fills the defaults, validates everything, and builds the request', () => {
    const f = initialForm(entry);
    expect(f.settings).toEqual({ DOMAIN: 'http://localhost', SIGNUPS_ALLOWED: 'false', ADMIN_TOKEN: '', PORT: '' });
    expect([f.cores, f.memory_mb, f.disk_gb]).toEqual(['1', '512', '4']);
    expect(validate(entry, f)).toEqual({ hostname: 'Required.', 'settings.PORT': 'Required.' });
    f.hostname = 'vault';
    f.settings.PORT = '8080';
    f.settings.SIGNUPS_ALLOWED = 'true';
    f.memory_mb = '1024';
    expect(validate(entry, f)).toEqual({});
    expect(request(entry, f)).toEqual({
      catalog_id: 'vaultwarden',
      hostname: 'vault',
      settings: { DOMAIN: 'http://localhost', SIGNUPS_ALLOWED: 'true', PORT: '8080' },
      resources: { cores: 1, memory_mb: 1024, disk_gb: 4 },
    });
    f.node = 'pve2';
    expect(request(entry, f).node).toBe('pve2');
  });
  it('says a generated secret may be left empty', () => {
    expect(constraint(entry.settings![2])).toBe('16–128 characters. Generated if left empty.');
    expect(constraint(s({ type: 'port' }))).toBe('A port, 1–65535.');
  });
  it('maps the API fields to the form, and entries to their pages', () => {
    expect(apiErrors({ 'environment.PORT': 'required', hostname: 'bad' })).toEqual({ 'settings.PORT': 'required', hostname: 'bad' });
    expect(entryHref('vaultwarden')).toBe('/catalog/vaultwarden');
    expect(entryHref('my store/nextcloud')).toBe('/catalog/my%20store/nextcloud');
  });
});
