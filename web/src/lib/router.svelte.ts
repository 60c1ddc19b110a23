// A small history router: the server answers every dashboard path with the
// page (web/embed.go), and this decides what it shows.

class Location {
  path = $state(globalThis.location?.pathname ?? '/');
  search = $state(globalThis.location?.search ?? '');
  get query(): URLSearchParams {
    return new URLSearchParams(this.search);
  }
}

export const here = new Location();

function sync() {
  here.path = location.pathname;
  here.search = location.search;
}

/** navigate goes to a path of the dashboard without reloading the page. */
export function navigate(to: string, opts: { replace?: boolean } = {}) {
  // A plain URL: parsed once here, never kept as state.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  const url = new URL(to, location.origin);
  if (url.origin !== location.origin) {
    location.assign(to);
    return;
  }
  if (url.pathname + url.search === location.pathname + location.search && !url.hash) return;
  if (opts.replace) history.replaceState(null, '', url.pathname + url.search + url.hash);
  else history.pushState(null, '', url.pathname + url.search + url.hash);
  const samePage = url.pathname === here.path;
  sync();
  if (!samePage) {
    window.scrollTo(0, 0);
    // Tell screen readers and keyboard users that the page changed: the
    // new page's heading takes the focus (Layout's main heading).
    queueMicrotask(() => requestAnimationFrame(() => document.querySelector<HTMLElement>('main h1')?.focus()));
  }
}

/** setQuery replaces the query string (filters, tabs) in place. */
export function setQuery(params: Record<string, string | undefined>) {
  const q = here.query;
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === '') q.delete(k);
    else q.set(k, v);
  }
  const s = q.toString();
  navigate(here.path + (s ? `?${s}` : ''), { replace: true });
}

/**
 * match compares a path with a pattern of literal segments and :params;
 * it answers the params, decoded, or null.
 */
export function match(pattern: string, path: string): Record<string, string> | null {
  const ps = pattern.split('/').filter(Boolean);
  const xs = path.split('/').filter(Boolean);
  if (ps.length !== xs.length) return null;
  const out: Record<string, string> = {};
  for (let i = 0; i < ps.length; i++) {
    if (ps[i].startsWith(':')) {
      try {
        out[ps[i].slice(1)] = decodeURIComponent(xs[i]);
      } catch {
        return null;
      }
    } else if (ps[i] !== xs[i]) return null;
  }
  return out;
}

/**
 * interceptLinks makes a click on a same-origin link navigate in place; a
 * click with a modifier, a middle click or a link with a target still
 * opens a new tab as a person expects.
 */
export function interceptLinks(root: HTMLElement) {
  const onClick = (e: MouseEvent) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = (e.target as Element | null)?.closest?.('a');
    if (!a || a.target || a.hasAttribute('download') || a.origin !== location.origin) return;
    if (a.pathname.startsWith('/api/')) return;
    e.preventDefault();
    navigate(a.pathname + a.search + a.hash);
  };
  root.addEventListener('click', onClick);
  window.addEventListener('popstate', sync);
  return () => {
    root.removeEventListener('click', onClick);
    window.removeEventListener('popstate', sync);
  };
}
