import { describe, expect, it } from 'vitest';
import { fireEvent, render, screen } from '@testing-library/svelte';
import SettingField from './SettingField.svelte';
import type { Setting } from './deploy';

const s = (x: Partial<Setting>): Setting => ({ name: 'X', type: 'string', label: 'X', required: false, ...x });

describe('SettingField', () => {
  it('renders each type as its control, labelled, with its hint', () => {
    const cases: [Partial<Setting>, string, string | null][] = [
      [{ type: 'string' }, 'INPUT', 'text'],
      [{ type: 'int' }, 'INPUT', 'number'],
      [{ type: 'port' }, 'INPUT', 'number'],
      [{ type: 'secret' }, 'INPUT', 'password'],
      [{ type: 'email' }, 'INPUT', 'email'],
      [{ type: 'url' }, 'INPUT', 'url'],
      [{ type: 'bool' }, 'INPUT', 'checkbox'],
      [{ type: 'enum', options: ['a', 'b'] }, 'SELECT', null],
    ];
    for (const [x, tag, type] of cases) {
      const { unmount } = render(SettingField, { setting: s({ ...x, name: 'V', label: `A ${x.type}`, description: 'What it is.' }) });
      const el = screen.getByLabelText(`A ${x.type}`) as HTMLInputElement;
      expect(el.tagName, x.type).toBe(tag);
      if (type) expect(el.getAttribute('type'), x.type).toBe(type);
      expect(el.id).toBe('setting-V');
      expect(el.getAttribute('aria-describedby')).toBe('setting-V-hint');
      expect(document.getElementById('setting-V-hint')?.textContent).toContain('What it is.');
      unmount();
    }
  });

  it('shows the default, the range and the bounds of a port', () => {
    render(SettingField, { setting: s({ type: 'port', label: 'Port', default: '8080', min: 1024 }), value: '8080' });
    const el = screen.getByLabelText('Port') as HTMLInputElement;
    expect(el.value).toBe('8080');
    expect([el.min, el.max]).toEqual(['1024', '65535']);
    expect(screen.getByText('A port, 1024–65535.')).toBeTruthy();
  });

  it('says a generated secret may be left empty, and does not require it', () => {
    render(SettingField, { setting: s({ type: 'secret', label: 'Token', required: true, generate: 32 }) });
    expect(screen.getByText(/Generated if left empty\./)).toBeTruthy();
    expect((screen.getByLabelText('Token') as HTMLInputElement).required).toBe(false);
  });

  it('ties an error to the control', () => {
    render(SettingField, { setting: s({ name: 'DOMAIN', label: 'Domain', description: 'Where.' }), error: 'Enter an http:// or https:// URL.' });
    const el = screen.getByLabelText('Domain');
    expect(el.getAttribute('aria-invalid')).toBe('true');
    expect(el.getAttribute('aria-describedby')).toBe('setting-DOMAIN-hint setting-DOMAIN-error');
    expect(document.getElementById('setting-DOMAIN-error')?.textContent).toBe('Enter an http:// or https:// URL.');
  });

  it('gives a bool as true or false, and tells of every change', async () => {
    let changes = 0;
    const { component } = render(SettingField, { setting: s({ type: 'bool', label: 'Sign-ups' }), value: 'false', onchange: () => changes++ });
    const box = screen.getByLabelText('Sign-ups') as HTMLInputElement;
    expect(box.checked).toBe(false);
    await fireEvent.click(box);
    expect(box.checked).toBe(true);
    expect(changes).toBe(1);
    expect(component).toBeTruthy();
  });

  it('offers an optional enum unset, a required one only its options', () => {
    const { unmount } = render(SettingField, { setting: s({ type: 'enum', label: 'Mode', options: ['fast', 'safe'], default: 'safe' }), value: 'safe' });
    expect([...(screen.getByLabelText('Mode') as HTMLSelectElement).options].map((o) => o.value)).toEqual(['', 'fast', 'safe']);
    expect((screen.getByLabelText('Mode') as HTMLSelectElement).value).toBe('safe');
    unmount();
    render(SettingField, { setting: s({ type: 'enum', label: 'Mode', options: ['fast', 'safe'], required: true }), value: 'fast' });
    expect([...(screen.getByLabelText(/Mode/) as HTMLSelectElement).options].map((o) => o.value)).toEqual(['fast', 'safe']);
  });
});
