import { describe, expect, it } from 'vitest';
import { rows, stepText, undoing } from './steps';

const states = (r: ReturnType<typeof rows>) => r.map((x) => `${x.step}:${x.state}`);

describe('rows', () => {
  it('marks the steps before the current one done and the rest to do', () => {
    expect(states(rows('deploy', 'docker', ['create', 'docker'], 'running'))).toEqual([
      'create:done', 'network:done', 'docker:current', 'compose:pending', 'env:pending', 'up:pending', 'forward:pending', 'health:pending',
    ]);
  });
  it('shows every step done once the deploy succeeded, seen or not', () => {
    expect(states(rows('deploy', '', ['env'], 'ok')).every((s) => s.endsWith(':done'))).toBe(true);
    expect(rows('deploy', '', [], 'ok')).toHaveLength(8);
  });
  it('marks the step that failed and the undo after it', () => {
    expect(states(rows('deploy', 'cleanup', ['create', 'network', 'docker', 'cleanup'], 'running'))).toEqual([
      'create:done', 'network:done', 'docker:failed', 'cleanup:current',
    ]);
    expect(states(rows('deploy', '', ['create', 'cleanup', 'cleanup-forward'], 'failed'))).toEqual([
      'create:failed', 'cleanup:done', 'cleanup-forward:done',
    ]);
  });
  it('follows a clone, and shows an unknown step as it is', () => {
    expect(rows('clone', 'snapshot', ['snapshot'], 'running')[0]).toEqual({ step: 'snapshot', text: 'Snapshot the original', state: 'current' });
    expect(states(rows('deploy', 'warm-up', ['create', 'warm-up'], 'running')).slice(-1)).toEqual(['warm-up:current']);
    expect(stepText('warm-up')).toBe('warm-up');
    expect(stepText('health')).toBe('Check that it answers');
  });
  it('knows an undo', () => {
    expect([undoing('cleanup'), undoing('cleanup-forward'), undoing('settle'), undoing('rollback-up'), undoing('up'), undoing(undefined)]).toEqual([
      true, true, true, true, false, false,
    ]);
  });
});
