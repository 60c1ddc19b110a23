// The lines of an app's live log: parsed from the follow stream's `log`
// events and kept to the last few thousand, so a chatty app cannot grow
// the page without bound.
import type { Schemas } from '../../lib/api';

export type AppLogLine = Schemas['AppLogLine'];

/** A line as the logs view shows it, with a key that never repeats. */
export interface Line {
  seq: number;
  time: string;
  service: string;
  line: string;
}

/** The most lines kept in the page. */
export const maxLines = 2000;

/** parseLine reads the data of a `log` event; null when it is not a line. */
export function parseLine(data: string): AppLogLine | null {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return null;
  }
  if (!v || typeof v !== 'object' || typeof (v as AppLogLine).line !== 'string') return null;
  const l = v as AppLogLine;
  return {
    line: l.line,
    time: typeof l.time === 'string' ? l.time : undefined,
    service: typeof l.service === 'string' ? l.service : undefined,
  };
}

/** parseEnd reads the reason of an `end` event. */
export function parseEnd(data: string): string {
  try {
    const v = JSON.parse(data) as { reason?: unknown };
    if (typeof v?.reason === 'string' && v.reason) return v.reason;
  } catch {
    // not JSON: no reason
  }
  return 'the log ended';
}

/** shortService names a Compose container as people call it: app-web-1 → web. */
export function shortService(s: string | undefined): string {
  if (!s) return '';
  const m = /^app-(.+)-\d+$/.exec(s);
  return m ? m[1] : s;
}

/**
 * Lines keeps the last `max` lines appended to it; append is cheap, and
 * `view` answers a new array (for a $state.raw) only when asked.
 */
export class Lines {
  private items: Line[] = [];
  private seq = 0;
  private cut = 0;
  constructor(readonly max = maxLines) {}

  append(ls: AppLogLine[]) {
    for (const l of ls) {
      this.items.push({ seq: ++this.seq, time: l.time ?? '', service: shortService(l.service), line: l.line ?? '' });
    }
    if (this.items.length > this.max) {
      this.cut += this.items.length - this.max;
      this.items.splice(0, this.items.length - this.max);
    }
  }

  clear() {
    this.items = [];
    this.cut = 0;
  }

  get length(): number {
    return this.items.length;
  }

  /** dropped: how many lines were appended but are no longer kept. */
  get dropped(): number {
    return this.cut;
  }

  view(): Line[] {
    return this.items.slice();
  }
}

/** clock renders a line's time as HH:MM:SS (local), or '' without one. */
export function clock(t: string): string {
  if (!t) return '';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}
