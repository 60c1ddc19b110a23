// What the admin pages compute, kept apart from their markup so that it
// can be tested on its own.
import type { Schemas } from '../../lib/api';

type Quota = Schemas['Quota'];
type App = Schemas['App'];

/** shellQuote quotes a word for a POSIX shell when it needs it. */
export function shellQuote(s: string): string {
  if (s !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface InstallOptions {
  target: string;
  token: string;
  coordinators: string;
  pkg: string;
  node?: string;
}

/**
 * installCommand is the `proximityctl node install` line that puts the
 * agent on a node (coordinator/cmd/proximityctl/install.go): the target,
 * then --join-token, --coordinator and --package, and --node when the
 * token was made for one node.
 */
export function installCommand(o: InstallOptions): string {
  const coord = o.coordinators
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .join(',');
  const parts = [
    'proximityctl node install',
    shellQuote(o.target.trim() || 'root@NODE'),
    `--join-token ${shellQuote(o.token)}`,
    `--coordinator ${shellQuote(coord || 'HOST:7073')}`,
    `--package ${shellQuote(o.pkg.trim() || 'proximity-agent.deb')}`,
  ];
  if (o.node?.trim()) parts.push(`--node ${shellQuote(o.node.trim())}`);
  return parts.join(' ');
}

/** grpcGuess is the coordinators' agent address as docs/agent.md writes it: the API host, port 7073. */
export function grpcGuess(httpAddr: string): string {
  if (!httpAddr) return '';
  const m = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(httpAddr);
  return m ? `${m[1]}:7073` : '';
}

/**
 * mergePatch is the JSON merge patch (RFC 7386) from before to after: the
 * top-level fields whose value changed (objects and lists compared whole,
 * as the API replaces lists whole).
 */
export function mergePatch<T extends object>(before: T, after: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(after) as (keyof T)[]) {
    if (JSON.stringify(before[k]) !== JSON.stringify(after[k])) out[k] = after[k];
  }
  return out;
}

/** The quota's fields, in the order forms show them. */
export const quotaFields = [
  { key: 'max_cores', label: 'Cores' },
  { key: 'max_memory_mb', label: 'Memory (MiB)' },
  { key: 'max_disk_gb', label: 'Disk (GB)' },
  { key: 'max_apps', label: 'Apps' },
] as const;

export type QuotaKey = (typeof quotaFields)[number]['key'];
export type QuotaText = Record<QuotaKey, string>;

/** quotaText is a quota as the form's fields show it ('' for none). */
export function quotaText(q: Quota | null | undefined): QuotaText {
  const t = { max_cores: '', max_memory_mb: '', max_disk_gb: '', max_apps: '' };
  if (!q) return t;
  for (const f of quotaFields) t[f.key] = q[f.key] === undefined ? '' : String(q[f.key]);
  return t;
}

/**
 * quotaFromText reads a user's quota form: every field empty is null (the
 * default quota); a field left empty beside others takes the default's
 * value. A field that is not a whole number ≥ 0 is named in the errors.
 */
export function quotaFromText(t: QuotaText, defaults: Quota): { quota: Quota | null; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  if (quotaFields.every((f) => t[f.key].trim() === '')) return { quota: null, errors };
  const q: Quota = {};
  for (const f of quotaFields) {
    const s = t[f.key].trim();
    if (s === '') {
      q[f.key] = defaults[f.key] ?? 0;
    } else if (/^\d+$/.test(s)) {
      q[f.key] = Number(s);
    } else {
      errors[f.key] = 'a whole number, 0 for unlimited';
    }
  }
  return { quota: Object.keys(errors).length ? null : q, errors };
}

export interface Usage {
  apps: number;
  cores: number;
  memory_mb: number;
  disk_gb: number;
}

/** usageByOwner sums the apps' resources per owner (a user's ID). */
export function usageByOwner(apps: App[]): Map<string, Usage> {
  const m = new Map<string, Usage>();
  for (const a of apps) {
    const u = m.get(a.owner) ?? { apps: 0, cores: 0, memory_mb: 0, disk_gb: 0 };
    u.apps++;
    u.cores += a.resources?.cores ?? 0;
    u.memory_mb += a.resources?.memory_mb ?? 0;
    u.disk_gb += a.resources?.disk_gb ?? 0;
    m.set(a.owner, u);
  }
  return m;
}

/** usageByNode counts the apps and sums the cores placed on each node. */
export function usageByNode(apps: App[]): Map<string, { apps: number; cores: number }> {
  const m = new Map<string, { apps: number; cores: number }>();
  for (const a of apps) {
    const u = m.get(a.node) ?? { apps: 0, cores: 0 };
    u.apps++;
    u.cores += a.resources?.cores ?? 0;
    m.set(a.node, u);
  }
  return m;
}

/** limitText reads a quota limit: 0 or none is unlimited. */
export function limitText(used: number, limit: number | undefined, unit = ''): string {
  const u = unit ? ` ${unit}` : '';
  return limit ? `${used} of ${limit}${u}` : `${used}${u} (no limit)`;
}

/** reservationKind tells what a reservation's owner is: app, user or other. */
export function reservationKind(owner: string | undefined): 'app' | 'user' | 'other' {
  if (owner?.startsWith('app:')) return 'app';
  if (owner?.startsWith('user:')) return 'user';
  return 'other';
}

/** listText reads a comma- or line-separated list; listJoin writes one. */
export function listText(s: string): string[] {
  return s
    .split(/[,\n]/)
    .map((x) => x.trim())
    .filter(Boolean);
}

/** toRFC3339 turns a datetime-local value into RFC 3339 ('' stays ''). */
export function toRFC3339(local: string): string {
  if (!local) return '';
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

/** fromRFC3339 turns RFC 3339 into a datetime-local value in the reader's zone. */
export function fromRFC3339(t: string): string {
  if (!t) return '';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** pageCount is how many pages a total makes. */
export function pageCount(total: number, per: number): number {
  return Math.max(1, Math.ceil(total / Math.max(1, per)));
}

/**
 * fetchAll reads every page of a paged list (100 at a time, at most 50
 * pages).
 */
export async function fetchAll<T>(get: (page: number) => Promise<{ items?: T[]; total?: number }>): Promise<T[]> {
  const out: T[] = [];
  for (let page = 1; page <= 50; page++) {
    const r = await get(page);
    const items = r.items ?? [];
    out.push(...items);
    if (items.length === 0 || out.length >= (r.total ?? 0)) break;
  }
  return out;
}
