// What an app's page and the apps list decide from the app alone: which
// actions its status allows, its main URL, where its catalog entry is.
import type { App } from '../../lib/api';

export type Action = 'open' | 'start' | 'stop' | 'restart' | 'backup' | 'clone' | 'update' | 'delete' | 'cancel';

/** Statuses in which no operation runs: the app rests. */
const resting = new Set(['running', 'stopped', 'error']);

/** busy: an operation runs (its status says which). */
export function busy(app: Pick<App, 'status' | 'operation'>): boolean {
  return !resting.has(app.status) || !!app.operation;
}

/** mainURL is where people open the app, or '' when it has none yet. */
export function mainURL(app: Pick<App, 'urls'>): string {
  const urls = app.urls ?? [];
  return (urls.find((u) => u.main) ?? urls[0])?.url ?? '';
}

/**
 * allowed answers the actions an app's status allows now. The API decides
 * in the end (409 otherwise); this only keeps the buttons honest.
 */
export function allowed(app: Pick<App, 'status' | 'operation' | 'urls' | 'update_available'>): Set<Action> {
  const out = new Set<Action>();
  const s = app.status;
  if (s === 'deleting') return out;
  if (busy(app)) {
    out.add('cancel');
    out.add('delete');
    if (s !== 'deploying' && s !== 'cloning' && mainURL(app)) out.add('open');
    return out;
  }
  out.add('delete');
  if (s === 'running') {
    out.add('stop');
    out.add('restart');
    if (mainURL(app)) out.add('open');
  }
  if (s === 'stopped' || s === 'error') out.add('start');
  if (s === 'error') out.add('stop');
  if (s === 'running' || s === 'stopped') {
    out.add('backup');
    out.add('clone');
    if (app.update_available) out.add('update');
  }
  return out;
}

/**
 * catalogPath is the API path of an app's catalog entry: a bare id is the
 * builtin source's, source/id another source's.
 */
export function catalogPath(catalogID: string): { source?: string; id: string } {
  const i = catalogID.indexOf('/');
  return i < 0 ? { id: catalogID } : { source: catalogID.slice(0, i), id: catalogID.slice(i + 1) };
}

/** The tabs of an app's page, in order; '' is the overview. */
export const tabs = [
  { tab: '', label: 'Overview' },
  { tab: 'logs', label: 'Logs' },
  { tab: 'metrics', label: 'Metrics' },
  { tab: 'backups', label: 'Backups' },
  { tab: 'settings', label: 'Settings' },
] as const;

export type Tab = (typeof tabs)[number]['tab'];

/** tabOf reads the route's tab; an unknown one is null (not found). */
export function tabOf(tab: string): Tab | null {
  const t = tabs.find((x) => x.tab === tab);
  return t ? t.tab : null;
}

/** withApp replaces the app of the same id in a list, or adds it at the end. */
export function withApp(list: App[], app: App, add: boolean): App[] {
  const i = list.findIndex((a) => a.id === app.id);
  if (i < 0) return add ? [...list, app] : list;
  const next = list.slice();
  next[i] = app;
  return next;
}

/** The operations DeployProgress follows. */
export function deployLike(op: string | undefined): boolean {
  return op === 'deploy' || op === 'clone';
}

/**
 * Ask is a question for the page's one confirmation dialog (one per page,
 * so that its ids stay unique): run does the thing once confirmed.
 */
export interface Ask {
  title: string;
  body: string;
  typed?: string;
  confirmLabel: string;
  danger?: boolean;
  run: () => Promise<void>;
}

/**
 * Seen counts the events of each app, so that an action's answer (the app
 * when the action began) does not overwrite a newer state an event already
 * brought: apply the answer only if no event came since `stamp`.
 */
export class Seen {
  private n = new Map<string, number>();
  event(id: string) {
    this.n.set(id, (this.n.get(id) ?? 0) + 1);
  }
  stamp(id: string): number {
    return this.n.get(id) ?? 0;
  }
  fresh(id: string, stamp: number): boolean {
    return this.stamp(id) === stamp;
  }
}
