// Empties dist/ but for .gitkeep, which keeps the directory that embed.go
// embeds in a checkout where the front end is not built.
import { readdirSync, rmSync } from 'node:fs';

for (const name of readdirSync('dist')) {
  if (name !== '.gitkeep') rmSync(`dist/${name}`, { recursive: true, force: true });
}
