import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { connected, listen, LiveReads } from './events';

type Item = { id: string; v: number };

// deferred is a read whose answer the test gives when it wants.
function deferred<A>() {
  let give!: (a: A) => void;
  const p = new Promise<A>((r) => (give = r));
  return { p, give };
}

describe('LiveReads', () => {
  it('lets the events that arrive during a read win over its answer', async () => {
    const reads = new LiveReads<Item>((i) => i.id);
    const answer = deferred<Item[]>();
    const read = reads.read(
      () => answer.p,
      (a) => a,
    );
    reads.saw('a', { id: 'a', v: 2 }); // changed after the server read it
    reads.saw('b', null); // deleted after the server read it
    reads.saw('c', { id: 'c', v: 1 }); // made after the server read it
    answer.give([
      { id: 'a', v: 1 },
      { id: 'b', v: 1 },
      { id: 'd', v: 1 },
    ]);
    const { items, added } = await read;
    expect(items).toEqual([
      { id: 'a', v: 2 },
      { id: 'd', v: 1 },
    ]);
    expect(added).toEqual([{ id: 'c', v: 1 }]);
  });

  it('ignores the events from before and after a read', async () => {
    const reads = new LiveReads<Item>((i) => i.id);
    reads.saw('a', null);
    const { items, added } = await reads.read(
      async () => [{ id: 'a', v: 1 }],
      (a) => a,
    );
    reads.saw('a', { id: 'a', v: 9 });
    expect(items).toEqual([{ id: 'a', v: 1 }]);
    expect(added).toEqual([]);
  });

  it('keeps each read its own events', async () => {
    const reads = new LiveReads<Item>((i) => i.id);
    const first = deferred<Item[]>();
    const one = reads.read(
      () => first.p,
      (a) => a,
    );
    reads.saw('a', { id: 'a', v: 2 });
    const two = reads.read(
      async () => [{ id: 'a', v: 3 }],
      (a) => a,
    );
    first.give([{ id: 'a', v: 1 }]);
    expect((await one).items).toEqual([{ id: 'a', v: 2 }]);
    expect((await two).items).toEqual([{ id: 'a', v: 3 }]);
  });
});

// FakeSource stands in for the browser's EventSource.
class FakeSource {
  static last: FakeSource | null = null;
  handlers = new Map<string, ((ev: unknown) => void)[]>();
  closed = false;
  constructor(public url: string) {
    FakeSource.last = this;
  }
  addEventListener(name: string, f: (ev: unknown) => void) {
    this.handlers.set(name, [...(this.handlers.get(name) ?? []), f]);
  }
  fire(name: string, ev: unknown = {}) {
    for (const f of this.handlers.get(name) ?? []) f(ev);
  }
  close() {
    this.closed = true;
  }
}

describe('connected', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.stubGlobal('EventSource', FakeSource);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('waits until the stream has connected', async () => {
    const stop = listen(() => {});
    let done = false;
    connected().then(() => (done = true));
    await vi.advanceTimersByTimeAsync(100);
    expect(done).toBe(false);
    FakeSource.last?.fire('open');
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(true);
    // Once connected, at once.
    let again = false;
    connected().then(() => (again = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(again).toBe(true);
    stop();
    expect(FakeSource.last?.closed).toBe(true);
  });

  it('gives up waiting after its time, so a page still loads without the stream', async () => {
    const stop = listen(() => {});
    let done = false;
    connected(1000).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(999);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
    stop();
  });

  it('hands every listener the parsed events', () => {
    const got: unknown[] = [];
    const stop = listen((name, data) => got.push([name, data]));
    FakeSource.last?.fire('app', { data: '{"id":"app_1"}' });
    FakeSource.last?.fire('app', { data: 'not json' });
    expect(got).toEqual([['app', { id: 'app_1' }]]);
    stop();
  });
});
