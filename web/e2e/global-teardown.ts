import { rmSync } from 'node:fs';
import { readState } from './state';

export default async function globalTeardown() {
  let s;
  try {
    s = readState();
  } catch {
    return; // the setup failed before it started anything to stop
  }
  try {
    process.kill(-s.pid, 'SIGTERM');
  } catch {
    // already gone
  }
  // dev removes nothing it was given: the data directory is ours.
  await new Promise((r) => setTimeout(r, 1000));
  rmSync(s.dataDir, { recursive: true, force: true });
}
