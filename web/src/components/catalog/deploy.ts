// The deploy form's rules: the checks the API makes on a deploy request
// (internal/catalog/settings.go, internal/validate), made before it is
// sent so that a person sees them beside the field at once. The API stays
// the judge: its 400 names fields the same way (settings.NAME, hostname).
import type { Schemas } from '../../lib/api';

export type Entry = Schemas['CatalogEntry'];
export type Setting = Schemas['Setting'];
export type Resources = Schemas['AppResources'];

/** The form's values, all as text: settings by name, hostname, node, resources. */
export interface DeployForm {
  hostname: string;
  node: string;
  settings: Record<string, string>;
  cores: string;
  memory_mb: string;
  disk_gb: string;
}

/** The bounds of a resource field, as the API checks them. */
export const resourceBounds = {
  cores: { min: 1, max: 64, label: 'Cores' },
  memory_mb: { min: 128, max: 262144, label: 'Memory (MB)' },
  disk_gb: { min: 1, max: 4096, label: 'Disk (GB)' },
} as const;

export type ResourceName = keyof typeof resourceBounds;

/** A generated secret may be left empty: the node makes one. */
export function generated(s: Setting): boolean {
  return s.type === 'secret' && (s.generate ?? 0) > 0;
}

/** initialForm fills the form with the entry's defaults. */
export function initialForm(e: Entry): DeployForm {
  const settings: Record<string, string> = {};
  for (const s of e.settings ?? []) {
    if (s.type === 'bool') settings[s.name] = s.default === 'true' ? 'true' : 'false';
    else if (s.type === 'enum' && !s.default && s.required && s.options?.length) settings[s.name] = s.options[0];
    else settings[s.name] = s.type === 'secret' ? '' : (s.default ?? '');
  }
  return {
    hostname: '',
    node: '',
    settings,
    cores: String(e.resources?.cores ?? 1),
    memory_mb: String(e.resources?.memory_mb ?? 512),
    disk_gb: String(e.resources?.disk_gb ?? 4),
  };
}

/** A whole number written as the API reads it (no sign but minus, no leading zero). */
function wholeNumber(v: string): number | null {
  if (!/^-?(0|[1-9][0-9]*)$/.test(v)) return null;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : null;
}

/** What a Compose .env file cannot hold (internal/dotenv.CheckValue). */
function envRule(v: string): string {
  if (new TextEncoder().encode(v).length > 4096) return 'longer than 4096 bytes';
  for (const ch of v) {
    const c = ch.codePointAt(0) ?? 0;
    if (c === 0x0a || c === 0x0d) return 'must be a single line';
    if (c === 0x09) continue;
    if (c < 0x20 || c === 0x7f || (c >= 0x80 && c < 0xa0) || c === 0x2028 || c === 0x2029) return 'contains a control character';
    if (ch === "'") return 'cannot contain a single quote';
  }
  if (v.endsWith('\\')) return 'cannot end with a backslash';
  return '';
}

/**
 * checkSetting answers what is wrong with a setting's value, or "".
 * An empty value is fine unless the setting is required (the API fills in
 * the default; a generated secret is made on the node).
 */
export function checkSetting(s: Setting, v: string): string {
  if (v === '') {
    if (generated(s)) return '';
    return s.required && !s.default ? 'Required.' : '';
  }
  const env = envRule(v);
  if (env) return `The value ${env}.`;
  switch (s.type) {
    case 'int':
    case 'port': {
      const n = wholeNumber(v);
      if (n === null) return s.type === 'port' ? 'Enter a port number.' : 'Enter a whole number.';
      if (s.type === 'port' && (n < 1 || n > 65535)) return 'A port is between 1 and 65535.';
      if (s.min !== undefined && n < s.min) return `At least ${s.min}.`;
      if (s.max !== undefined && n > s.max) return `At most ${s.max}.`;
      break;
    }
    case 'bool':
      if (v !== 'true' && v !== 'false') return 'Either true or false.';
      break;
    case 'enum':
      if (!(s.options ?? []).includes(v)) return `One of ${(s.options ?? []).join(', ')}.`;
      break;
    case 'email':
      if (!/^[^\s@<>()",;:]+@[^\s@<>()",;:]+$/.test(v)) return 'Enter an e-mail address, like name@example.org.';
      break;
    case 'url': {
      let ok = false;
      try {
        const u = new URL(v);
        ok = (u.protocol === 'http:' || u.protocol === 'https:') && u.host !== '';
      } catch {
        ok = false;
      }
      if (!ok) return 'Enter an http:// or https:// URL.';
      break;
    }
    default: {
      const n = Array.from(v).length;
      if (s.min !== undefined && n < s.min) return `At least ${s.min} characters (${n} now).`;
      if (s.max !== undefined && n > s.max) return `At most ${s.max} characters (${n} now).`;
    }
  }
  if (s.pattern) {
    let re: RegExp | null = null;
    try {
      re = new RegExp(`^(?:${s.pattern})$`, 'u');
    } catch {
      re = null; // a pattern JavaScript cannot read: the API judges it
    }
    if (re && !re.test(v)) return `Must match the pattern ${s.pattern}.`;
  }
  return '';
}

/** constraint says what a setting accepts, besides its description. */
export function constraint(s: Setting): string {
  const parts: string[] = [];
  if (s.type === 'port') parts.push(`A port, ${s.min ?? 1}–${s.max ?? 65535}.`);
  else if (s.type === 'int') {
    if (s.min !== undefined && s.max !== undefined) parts.push(`A whole number, ${s.min}–${s.max}.`);
    else if (s.min !== undefined) parts.push(`A whole number, at least ${s.min}.`);
    else if (s.max !== undefined) parts.push(`A whole number, at most ${s.max}.`);
  } else if (s.type === 'string' || s.type === 'secret') {
    if (s.min !== undefined && s.max !== undefined) parts.push(`${s.min}–${s.max} characters.`);
    else if (s.min !== undefined) parts.push(`At least ${s.min} characters.`);
    else if (s.max !== undefined) parts.push(`At most ${s.max} characters.`);
  }
  if (generated(s)) parts.push('Generated if left empty.');
  return parts.join(' ');
}

/** checkHostname: an app's hostname is one DNS label, lower case. */
export function checkHostname(h: string): string {
  if (h === '') return 'Required.';
  if (h.length > 63) return 'At most 63 characters.';
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(h)) return 'Lower-case letters, digits and hyphens (not at either end).';
  if (/^[0-9]+$/.test(h)) return 'Not only digits.';
  return '';
}

export function checkResource(name: ResourceName, v: string): string {
  const b = resourceBounds[name];
  const n = wholeNumber(v.trim());
  if (n === null) return 'Enter a whole number.';
  if (n < b.min || n > b.max) return `Between ${b.min} and ${b.max}.`;
  return '';
}

/** Field errors by the names the API uses: settings.NAME, hostname, cores… */
export type Errors = Record<string, string>;

/** validate checks the whole form; no key means no error. */
export function validate(e: Entry, f: DeployForm): Errors {
  const errs: Errors = {};
  const h = checkHostname(f.hostname);
  if (h) errs.hostname = h;
  for (const s of e.settings ?? []) {
    const m = checkSetting(s, f.settings[s.name] ?? '');
    if (m) errs[`settings.${s.name}`] = m;
  }
  for (const r of Object.keys(resourceBounds) as ResourceName[]) {
    const m = checkResource(r, f[r]);
    if (m) errs[r] = m;
  }
  return errs;
}

/** request is the POST /api/v1/apps body for the form. */
export function request(e: Entry, f: DeployForm): Schemas['DeployRequest'] {
  const settings: Record<string, string> = {};
  for (const s of e.settings ?? []) {
    const v = f.settings[s.name] ?? '';
    // Empty: the API fills in the default, the node generates a secret.
    if (v !== '') settings[s.name] = v;
  }
  const body: Schemas['DeployRequest'] = {
    catalog_id: e.id,
    hostname: f.hostname,
    settings,
    resources: { cores: Number(f.cores), memory_mb: Number(f.memory_mb), disk_gb: Number(f.disk_gb) },
  };
  if (f.node) body.node = f.node;
  return body;
}

/**
 * apiErrors maps the fields the API named in a 400 to the form's:
 * "environment.X" (an alias) to the setting X, others as they are
 * ("resources" is the group of resource fields).
 */
export function apiErrors(fields: Record<string, string>): Errors {
  const out: Errors = {};
  for (const [k, v] of Object.entries(fields)) {
    if (k.startsWith('environment.')) out[`settings.${k.slice('environment.'.length)}`] = v;
    else out[k] = v;
  }
  return out;
}

/** The path of an entry's page: source/id entries have two segments. */
export function entryHref(id: string): string {
  return '/catalog/' + id.split('/').map(encodeURIComponent).join('/');
}
