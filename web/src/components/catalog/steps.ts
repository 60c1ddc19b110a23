// The steps of a deploy and of a clone as the coordinator runs them
// (coordinator/apps: the stages of OpDeploy and OpClone, then cleanup… when
// one fails or is cancelled), in words.

export const sequences: Record<string, string[]> = {
  deploy: ['create', 'network', 'docker', 'compose', 'env', 'up', 'forward', 'health'],
  clone: ['snapshot', 'clone', 'remove-snapshot', 'start', 'network', 'up', 'forward', 'health'],
};

const words: Record<string, string> = {
  create: 'Create the container',
  network: 'Wait for its network',
  docker: 'Install Docker',
  compose: 'Write the Compose file',
  env: 'Write the settings',
  up: 'Start the app',
  forward: 'Open its ports',
  health: 'Check that it answers',
  snapshot: 'Snapshot the original',
  clone: 'Copy the container',
  'remove-snapshot': 'Remove the snapshot',
  start: 'Start the container',
  cleanup: 'Remove what was made',
  'cleanup-forward': 'Close its ports',
  settle: 'Read the container’s status',
};

/** stepText is a step's name in words; an unknown step is shown as it is. */
export function stepText(step: string): string {
  return words[step] ?? step;
}

/** An undo runs: a cancel is refused (409) then. */
export function undoing(step: string | undefined): boolean {
  return !!step && (step.startsWith('cleanup') || step === 'settle' || step.startsWith('rollback-'));
}

export type StepState = 'done' | 'current' | 'pending' | 'failed';

export interface StepRow {
  step: string;
  text: string;
  state: StepState;
}

/**
 * rows is the list a person sees: the operation's steps with the ones
 * seen done, the current one, and (while it runs) the ones to come; an
 * undo's steps after the step that failed.
 *
 * op: the operation (deploy or clone, "" once it ended); step: the current
 * step; seen: every step seen so far, in order; outcome: how it ended.
 */
export function rows(op: string, step: string, seen: string[], outcome: 'running' | 'ok' | 'failed'): StepRow[] {
  const seq = sequences[op] ?? [];
  const out: StepRow[] = [];
  const undo = seen.findIndex((s) => undoing(s));
  const forward = undo < 0 ? seen : seen.slice(0, undo);
  const back = undo < 0 ? [] : seen.slice(undo);
  if (outcome === 'ok') {
    // A deploy can end between two reads of it: every step is done.
    const all = seq.length ? seq : forward;
    for (const s of all) out.push({ step: s, text: stepText(s), state: 'done' });
    for (const s of forward) if (!all.includes(s)) out.push({ step: s, text: stepText(s), state: 'done' });
    return out;
  }
  if (outcome === 'running' && !back.length && seq.length) {
    const at = seq.indexOf(step);
    for (const [i, s] of seq.entries()) {
      const state: StepState = at < 0 ? (forward.includes(s) ? 'done' : 'pending') : i < at ? 'done' : i === at ? 'current' : 'pending';
      out.push({ step: s, text: stepText(s), state });
    }
    for (const s of forward) if (!seq.includes(s)) out.push({ step: s, text: stepText(s), state: s === step ? 'current' : 'done' });
    return out;
  }
  // Failed, or undoing: what was seen, the last forward step failed.
  for (const [i, s] of forward.entries()) {
    const failed = i === forward.length - 1 && (back.length > 0 || outcome === 'failed');
    out.push({ step: s, text: stepText(s), state: failed ? 'failed' : 'done' });
  }
  for (const s of back) {
    out.push({ step: s, text: stepText(s), state: s === step && outcome === 'running' ? 'current' : 'done' });
  }
  return out;
}
