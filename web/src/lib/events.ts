// The API's event stream (/api/v1/events), shared by every page that
// listens: one connection, opened on the first listener and closed after
// the last. EventSource reconnects by itself and resumes from the last id.

export type EventName = 'app' | 'app.deleted' | 'backup' | 'backup.deleted' | 'node' | 'node.deleted' | 'reset';
export type Listener = (name: EventName, data: unknown) => void;

const names: EventName[] = ['app', 'app.deleted', 'backup', 'backup.deleted', 'node', 'node.deleted', 'reset'];
const listeners = new Set<Listener>();
let source: EventSource | null = null;
// opened: the current stream has connected once; waiters: connected's.
let opened = false;
let waiters: (() => void)[] = [];

function open() {
  source = new EventSource('/api/v1/events');
  opened = false;
  source.addEventListener('open', () => {
    opened = true;
    for (const w of waiters.splice(0)) w();
  });
  for (const n of names) {
    source.addEventListener(n, (ev) => {
      let data: unknown = null;
      try {
        data = JSON.parse((ev as MessageEvent<string>).data);
      } catch {
        return;
      }
      for (const l of listeners) l(n, data);
    });
  }
}

/** listen calls f for every event until the function it answers is called. */
export function listen(f: Listener): () => void {
  listeners.add(f);
  if (!source) open();
  return () => {
    listeners.delete(f);
    if (listeners.size === 0 && source) {
      source.close();
      source = null;
      opened = false;
      for (const w of waiters.splice(0)) w();
    }
  };
}

/**
 * connected resolves once the stream has connected (the server follows
 * changes from then on), or after ms if it cannot: a page reads its state
 * after it, so that no change falls between the read and the stream's
 * start. Call it after listen.
 */
export function connected(ms = 3000): Promise<void> {
  if (opened || !source) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      waiters = waiters.filter((w) => w !== done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    waiters.push(done);
  });
}

/**
 * LiveReads reconciles reads of a list with the events that arrive while
 * a read is under way. An event carries the object as the server has it
 * when it sends it, and every later change brings another event, so an
 * event that arrives before a read's answer wins over the answer: the
 * object it carries replaces the answer's, and an object gone (null)
 * leaves the answer.
 */
export class LiveReads<T> {
  private reads = new Set<Map<string, T | null>>();
  constructor(private key: (item: T) => string) {}

  /** saw records an event: the object as sent, or null once it is gone. */
  saw(key: string, item: T | null) {
    for (const r of this.reads) r.set(key, item);
  }

  /**
   * read runs f, then answers its answer, its items as the events since
   * have left them, and the objects events brought meanwhile that the
   * answer does not hold (added).
   */
  async read<A>(f: () => Promise<A>, items: (answer: A) => T[]): Promise<{ answer: A; items: T[]; added: T[] }> {
    const during = new Map<string, T | null>();
    this.reads.add(during);
    try {
      const answer = await f();
      const out: T[] = [];
      const keys = new Set<string>();
      for (const item of items(answer)) {
        const k = this.key(item);
        keys.add(k);
        if (!during.has(k)) out.push(item);
        else if (during.get(k)) out.push(during.get(k) as T);
      }
      const added: T[] = [];
      for (const [k, item] of during) if (item && !keys.has(k)) added.push(item);
      return { answer, items: out, added };
    } finally {
      this.reads.delete(during);
    }
  }
}
