import { rmSync } from 'node:fs';
import { readState } from './state';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

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
  // The data directory is ours to remove once the server has stopped
  // writing to it: wait for it to exit (SIGKILL after 15 s).
  for (let i = 0; alive(s.pid); i++) {
    if (i === 150) {
      try {
        process.kill(-s.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    if (i > 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  rmSync(s.dataDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
}
