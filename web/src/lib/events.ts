// The API's event stream (/api/v1/events), shared by every page that
// listens: one connection, opened on the first listener and closed after
// the last. EventSource reconnects by itself and resumes from the last id.

export type EventName = 'app' | 'app.deleted' | 'backup' | 'backup.deleted' | 'node' | 'node.deleted' | 'reset';
export type Listener = (name: EventName, data: unknown) => void;

const names: EventName[] = ['app', 'app.deleted', 'backup', 'backup.deleted', 'node', 'node.deleted', 'reset'];
const listeners = new Set<Listener>();
let source: EventSource | null = null;

function open() {
  source = new EventSource('/api/v1/events');
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
    }
  };
}
