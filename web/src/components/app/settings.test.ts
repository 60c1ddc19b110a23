import { describe, expect, it } from 'vitest';
import { changes, initial, inputType, type Setting } from './settings';

const defs: Setting[] = [
  { name: 'TZ', type: 'string', label: 'Time zone', required: false, default: 'Etc/UTC' },
  { name: 'PORT', type: 'port', label: 'Port', required: false, default: '8080' },
  { name: 'SIGNUPS', type: 'bool', label: 'Sign-ups', required: false },
  { name: 'PASS', type: 'secret', label: 'Password', required: false },
  { name: 'MODE', type: 'enum', label: 'Mode', required: false, options: ['a', 'b'], default: 'a' },
];

describe('settings form', () => {
  it('starts from the app’s values, defaults where none, secrets empty', () => {
    expect(initial(defs, { TZ: 'Europe/Berlin', PORT: '9000' })).toEqual({
      TZ: 'Europe/Berlin',
      PORT: '9000',
      SIGNUPS: 'false',
      PASS: '',
      MODE: 'a',
    });
  });
  it('sends only what changed, typed; a secret only when typed', () => {
    const current = { TZ: 'Etc/UTC', PORT: '8080', SIGNUPS: 'false', MODE: 'a' };
    const form = initial(defs, current);
    expect(changes(defs, current, form)).toEqual({});
    form.PORT = '9090';
    form.SIGNUPS = 'true';
    form.PASS = 'hunter2hunter2';
    expect(changes(defs, current, form)).toEqual({ PORT: 9090, SIGNUPS: true, PASS: 'hunter2hunter2' });
    form.PORT = 'abc';
    expect(changes(defs, current, form).PORT).toBe('abc');
  });
  it('picks input types', () => {
    expect(['int', 'port', 'email', 'url', 'secret', 'string'].map((t) => inputType(t as Setting['type']))).toEqual([
      'number',
      'number',
      'email',
      'url',
      'password',
      'text',
    ]);
  });
});
