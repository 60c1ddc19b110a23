import { describe, expect, it } from 'vitest';
import { H, W, area, gapAfter, gauge, niceCeil, rate, segments, summary, windowOf, x, y, type Sample } from './chart';

const t0 = Date.parse('2026-11-30T10:00:00Z');
const at = (sec: number) => new Date(t0 + sec * 1000).toISOString();
const sample = (sec: number, o: Partial<Sample> = {}): Sample => ({
  at: at(sec),
  status: 'running',
  cpu: 0.1,
  mem: 100,
  max_mem: 400,
  disk: 10,
  max_disk: 40,
  net_in: 0,
  net_out: 0,
  ...o,
});

describe('scaling', () => {
  const w = { from: t0, to: t0 + 3600_000 };
  it('places times across the width and values up the height', () => {
    expect(x(t0, w)).toBe(0);
    expect(x(t0 + 1800_000, w)).toBe(W / 2);
    expect(x(t0 + 3600_000, w)).toBe(W);
    expect(y(0, 100)).toBe(H);
    expect(y(100, 100)).toBe(0);
    expect(y(25, 100)).toBe(H * 0.75);
  });
  it('clamps values outside 0..top and survives a zero top', () => {
    expect(y(150, 100)).toBe(0);
    expect(y(-5, 100)).toBe(H);
    expect(y(5, 0)).toBe(H);
  });
  it('rounds the top up to 1, 2 or 5 times a power of ten', () => {
    expect([0.3, 1, 1.2, 3, 7, 1000, 1001, 0.0123].map(niceCeil)).toEqual([0.5, 1, 2, 5, 10, 1000, 2000, 0.02]);
    expect(niceCeil(0)).toBe(0);
    expect(niceCeil(NaN)).toBe(0);
  });
  it('ends the window at the newest sample, the leader’s clock', () => {
    expect(windowOf([sample(0), sample(10)], 3600_000, 0)).toEqual({ from: t0 + 10_000 - 3600_000, to: t0 + 10_000 });
    expect(windowOf([], 1000, 5000)).toEqual({ from: 4000, to: 5000 });
  });
});

describe('rates from counters', () => {
  it('is bytes per second between successive samples, at the later time', () => {
    const pts = rate([sample(0, { net_in: 1000 }), sample(5, { net_in: 6000 }), sample(10, { net_in: 6000 })], (s) => s.net_in);
    expect(pts).toEqual([
      { t: t0 + 5000, v: 1000 },
      { t: t0 + 10_000, v: 0 },
    ]);
  });
  it('gives no rate across a restart (the counter fell)', () => {
    const pts = rate([sample(0, { net_in: 5000 }), sample(5, { net_in: 200 }), sample(10, { net_in: 700 })], (s) => s.net_in);
    expect(pts.map((p) => p.v)).toEqual([null, 100]);
  });
  it('gives no rate for times out of order or equal', () => {
    const pts = rate([sample(10, { net_in: 0 }), sample(5, { net_in: 10 }), sample(5, { net_in: 20 })], (s) => s.net_in);
    expect(pts.map((p) => p.v)).toEqual([null, null]);
  });
  it('gives no rate across a gap in the reports', () => {
    const ss = [0, 5, 10, 15, 120, 125].map((s) => sample(s, { net_out: s * 10 }));
    expect(rate(ss, (s) => s.net_out).map((p) => p.v)).toEqual([10, 10, 10, null, 10]);
  });
  it('has nothing for fewer than two samples', () => {
    expect(rate([sample(0)], (s) => s.net_in)).toEqual([]);
    expect(rate([], (s) => s.net_in)).toEqual([]);
  });
});

describe('gaps', () => {
  it('breaks after three usual intervals, at least 15 s', () => {
    expect(gapAfter([0, 5000, 10_000, 15_000])).toBe(15_000);
    expect(gapAfter([0, 10_000, 20_000, 30_000])).toBe(30_000);
    expect(gapAfter([])).toBe(15_000);
  });
  it('puts a null point in a gauge where reports stopped', () => {
    const pts = gauge([0, 5, 10, 100, 105].map((s) => sample(s, { cpu: s / 1000 })), (s) => s.cpu);
    expect(pts.map((p) => p.v)).toEqual([0, 0.005, 0.01, null, 0.1, 0.105]);
  });
  it('draws one line per run, and drops points outside the window', () => {
    const w = { from: t0, to: t0 + 300_000 };
    const pts = [
      { t: t0 - 1000, v: 1 },
      { t: t0, v: 0 },
      { t: t0 + 150_000, v: 10 },
      { t: t0 + 150_001, v: null },
      { t: t0 + 300_000, v: 5 },
    ];
    expect(segments(pts, w, 10)).toEqual([`0,${H} ${W / 2},0`, `${W},${H / 2}`]);
    expect(segments([], w, 10)).toEqual([]);
    expect(area(`0,${H} ${W / 2},0`)).toBe(`0,${H} 0,${H} ${W / 2},0 ${W / 2},${H}`);
  });
});

describe('summary', () => {
  it('is the newest value, the least and the most, gaps left out', () => {
    expect(summary([{ t: 1, v: 3 }, { t: 2, v: null }, { t: 3, v: 1 }, { t: 4, v: 2 }])).toEqual({ now: 2, min: 1, max: 3 });
  });
  it('has no value now when the newest point is a gap, and none at all without points', () => {
    expect(summary([{ t: 1, v: 3 }, { t: 2, v: null }])).toEqual({ now: null, min: 3, max: 3 });
    expect(summary([])).toEqual({ now: null, min: null, max: null });
  });
});
