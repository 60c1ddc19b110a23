// Empties the build's directory (coordinator/webui/dist) but for .gitkeep,
// which keeps the directory the Go package embeds in a checkout where the
// front end is not built.
import { readdirSync, rmSync } from 'node:fs';

const dist = '../coordinator/webui/dist';
for (const name of readdirSync(dist)) {
  if (name !== '.gitkeep') rmSync(`${dist}/${name}`, { recursive: true, force: true });
}
