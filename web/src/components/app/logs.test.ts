import { describe, expect, it } from 'vitest';
import { Lines, parseEnd, parseLine, shortService } from './logs';

describe('parseLine', () => {
  it('reads a log event', () => {
    expect(parseLine('{"time":"2026-11-30T05:16:56Z","service":"app-gotify-1","line":"ready"}')).toEqual({
      time: '2026-11-30T05:16:56Z',
      service: 'app-gotify-1',
      line: 'ready',
    });
    expect(parseLine('{"line":"no time"}')).toEqual({ line: 'no time', time: undefined, service: undefined });
  });
  it('refuses what is not a line', () => {
    expect(parseLine('not json')).toBeNull();
    expect(parseLine('{"msg":"x"}')).toBeNull();
    expect(parseLine('null')).toBeNull();
  });
  it('reads an end event', () => {
    expect(parseEnd('{"reason":"app stopped"}')).toBe('app stopped');
    expect(parseEnd('')).toBe('the log ended');
  });
  it('names a Compose container by its service', () => {
    expect(shortService('app-web-1')).toBe('web');
    expect(shortService('app-my-db-12')).toBe('my-db');
    expect(shortService('other')).toBe('other');
    expect(shortService(undefined)).toBe('');
  });
});

describe('Lines', () => {
  it('keeps only the last max lines, in order, with keys that never repeat', () => {
    const l = new Lines(3);
    l.append([{ line: 'a' }, { line: 'b' }]);
    l.append([{ line: 'c' }, { line: 'd' }, { line: 'e' }]);
    const v = l.view();
    expect(v.map((x) => x.line)).toEqual(['c', 'd', 'e']);
    expect(l.dropped).toBe(2);
    expect(new Set(v.map((x) => x.seq)).size).toBe(3);
    l.clear();
    l.append([{ line: 'f' }]);
    expect(l.view().map((x) => x.line)).toEqual(['f']);
    expect(l.view()[0].seq).toBeGreaterThan(v[2].seq);
    expect(l.dropped).toBe(0);
  });
  it('bounds a flood at 2000 by default', () => {
    const l = new Lines();
    for (let i = 0; i < 50; i++) l.append(Array.from({ length: 100 }, (_, j) => ({ line: `${i}-${j}` })));
    expect(l.length).toBe(2000);
    expect(l.view()[1999].line).toBe('49-99');
    expect(l.view()[0].line).toBe('30-0');
  });
  it('view is a copy', () => {
    const l = new Lines(5);
    l.append([{ line: 'a' }]);
    const v = l.view();
    l.append([{ line: 'b' }]);
    expect(v).toHaveLength(1);
  });
});
