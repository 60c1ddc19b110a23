// The settings form's logic: the form's values from an app's, and the
// changes to send (only what differs; a secret only when a new value is
// typed).
import type { Schemas } from '../../lib/api';

export type Setting = Schemas['Setting'];

/** initial: the form's value of each setting ('' for a secret: kept). */
export function initial(defs: Setting[], current: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of defs) {
    if (d.type === 'secret') out[d.name] = '';
    else out[d.name] = current?.[d.name] ?? d.default ?? (d.type === 'bool' ? 'false' : '');
  }
  return out;
}

/**
 * changes: the settings whose values differ from the app's, typed as the
 * API takes them (numbers for int and port, booleans for bool).
 */
export function changes(
  defs: Setting[],
  current: Record<string, string> | undefined,
  form: Record<string, string>,
): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const d of defs) {
    const v = form[d.name] ?? '';
    if (d.type === 'secret') {
      if (v !== '') out[d.name] = v;
      continue;
    }
    const was = current?.[d.name] ?? d.default ?? (d.type === 'bool' ? 'false' : '');
    if (v === was) continue;
    if ((d.type === 'int' || d.type === 'port') && v.trim() !== '' && Number.isFinite(Number(v))) out[d.name] = Number(v);
    else if (d.type === 'bool') out[d.name] = v === 'true';
    else out[d.name] = v;
  }
  return out;
}

/** inputType: the HTML input type of a setting that is not bool or enum. */
export function inputType(t: Setting['type']): string {
  switch (t) {
    case 'int':
    case 'port':
      return 'number';
    case 'email':
      return 'email';
    case 'url':
      return 'url';
    case 'secret':
      return 'password';
    default:
      return 'text';
  }
}
