// The metrics charts' arithmetic, apart from any DOM: the series from the
// API's samples (rates from its byte counters), gaps, scaling to the
// chart's box, and the summary (now, min, max) that the text and the
// screen reader get.
import type { Schemas } from '../../lib/api';

export type Sample = Schemas['MetricsSample'];

/** A value at a time (ms since the epoch); null is a gap in the line. */
export interface Point {
  t: number;
  v: number | null;
}

/** How often the metrics tab asks again, and the span it shows. */
export const REFRESH_MS = 15_000;
export const SPAN_MS = 60 * 60 * 1000;

/** The chart's box in SVG user units (the SVG scales it to its width). */
export const W = 300;
export const H = 80;

/** The longest a report may be late before the line breaks: never less
 * than this, else three of the usual intervals. */
export const MIN_GAP_MS = 15_000;

/** times are the samples' times in ms, oldest first. */
export function times(samples: Sample[]): number[] {
  return samples.map((s) => Date.parse(s.at));
}

/**
 * gapAfter is how long between two samples breaks the line: three times
 * the median interval, at least MIN_GAP_MS (a node that stopped
 * reporting, a leader change).
 */
export function gapAfter(ts: number[]): number {
  const d: number[] = [];
  for (let i = 1; i < ts.length; i++) if (ts[i] > ts[i - 1]) d.push(ts[i] - ts[i - 1]);
  if (d.length === 0) return MIN_GAP_MS;
  d.sort((a, b) => a - b);
  const median = d[Math.floor(d.length / 2)];
  return Math.max(MIN_GAP_MS, 3 * median);
}

/**
 * gauge is a series of a sample's value as it is (CPU, memory, disk),
 * with a gap (a null point) where reports stopped for longer than
 * gapAfter.
 */
export function gauge(samples: Sample[], value: (s: Sample) => number): Point[] {
  const ts = times(samples);
  const gap = gapAfter(ts);
  const out: Point[] = [];
  samples.forEach((s, i) => {
    if (i > 0 && ts[i] - ts[i - 1] > gap) out.push({ t: ts[i - 1] + 1, v: null });
    out.push({ t: ts[i], v: value(s) });
  });
  return out;
}

/**
 * rate derives bytes per second from a counter: the difference of two
 * successive samples over the seconds between them, at the later one's
 * time. A counter that fell (the container restarted, its counters start
 * again from 0), times out of order or too far apart give no rate there:
 * a gap.
 */
export function rate(samples: Sample[], counter: (s: Sample) => number): Point[] {
  const ts = times(samples);
  const gap = gapAfter(ts);
  const out: Point[] = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = ts[i] - ts[i - 1];
    const dc = counter(samples[i]) - counter(samples[i - 1]);
    out.push({ t: ts[i], v: dt > 0 && dt <= gap && dc >= 0 ? (dc * 1000) / dt : null });
  }
  return out;
}

/** niceCeil rounds up to 1, 2 or 5 times a power of ten (0 stays 0). */
export function niceCeil(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) return 0;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p * (1 + 1e-9)) return m * p;
  return 10 * p;
}

/** Summary is what the chart says in words. */
export interface Summary {
  now: number | null;
  min: number | null;
  max: number | null;
}

/** summary is the newest value, the least and the most of a series. */
export function summary(points: Point[]): Summary {
  let min: number | null = null;
  let max: number | null = null;
  let now: number | null = null;
  for (const p of points) {
    if (p.v === null) continue;
    min = min === null ? p.v : Math.min(min, p.v);
    max = max === null ? p.v : Math.max(max, p.v);
  }
  const last = points.at(-1);
  if (last && last.v !== null) now = last.v;
  return { now, min, max };
}

/** The time window a chart shows, in ms. */
export interface Window {
  from: number;
  to: number;
}

/** x places a time in the window on the chart's width. */
export function x(t: number, w: Window): number {
  const span = w.to - w.from;
  return span > 0 ? ((t - w.from) / span) * W : W;
}

/** y places a value on the chart's height, 0 at the bottom and top at the top (clamped). */
export function y(v: number, top: number): number {
  if (!(top > 0)) return H;
  return H - (Math.min(Math.max(v, 0), top) / top) * H;
}

const r = (n: number) => Math.round(n * 10) / 10;

/**
 * segments are the polylines of a series: one per run of values without a
 * gap, each as an SVG points attribute ("x,y x,y …"); points outside the
 * window are left out. A run of one point is a segment of one pair (drawn
 * as a dot).
 */
export function segments(points: Point[], w: Window, top: number): string[] {
  const out: string[] = [];
  let cur: string[] = [];
  for (const p of points) {
    if (p.v === null || p.t < w.from || p.t > w.to) {
      if (p.v === null && cur.length) {
        out.push(cur.join(' '));
        cur = [];
      }
      continue;
    }
    cur.push(`${r(x(p.t, w))},${r(y(p.v, top))}`);
  }
  if (cur.length) out.push(cur.join(' '));
  return out;
}

/** area closes a segment down to the chart's bottom, for its fill. */
export function area(segment: string): string {
  const pts = segment.split(' ');
  const first = pts[0].split(',')[0];
  const last = pts[pts.length - 1].split(',')[0];
  return `${first},${H} ${segment} ${last},${H}`;
}

/**
 * windowOf is the last span (ms) up to the newest report: the chart's
 * right edge is the newest sample (the leader's clock, not the browser's).
 */
export function windowOf(samples: Sample[], span: number, fallbackNow: number): Window {
  const last = samples.length ? Date.parse(samples[samples.length - 1].at) : NaN;
  const to = Number.isFinite(last) ? last : fallbackNow;
  return { from: to - span, to };
}
