import { readFileSync } from 'node:fs';
import path from 'node:path';

export const stateDir = path.resolve(import.meta.dirname, '.state');

export interface E2EState {
  url: string;
  pid: number;
  dataDir: string;
  token: string;
  admin: { name: string; password: string };
  user: { name: string; password: string };
}

export function readState(): E2EState {
  return JSON.parse(readFileSync(path.join(stateDir, 'state.json'), 'utf8'));
}

/** The cookies of a signed-in role, for test.use({ storageState }). */
export const storage = {
  admin: path.join(stateDir, 'admin.json'),
  user: path.join(stateDir, 'user.json'),
};
