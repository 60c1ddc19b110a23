// Starts `proximity-dev` (three simulated nodes) on a loopback
// address of its own, signs the admin and a second user in, and leaves
// what the tests need in e2e/.state/: the URL, the names and passwords, and
// each role's cookies.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from '@playwright/test';
import { stateDir, type E2EState } from './state';

const bin = path.resolve(process.env.PROXIMITY_DEV ?? '../bin/proximity-dev');

export default async function globalSetup() {
  mkdirSync(stateDir, { recursive: true });
  const dataDir = mkdtempSync(path.join(tmpdir(), 'proximity-e2e-'));
  const host = `127.${20 + Math.floor(Math.random() * 200)}.${Math.floor(Math.random() * 250)}.${2 + Math.floor(Math.random() * 250)}`;
  const url = `https://${host}:7070`;
  const log = openSync(path.join(stateDir, 'coordinator.log'), 'w');
  const child = spawn(bin, ['--http-addr', `${host}:7070`, '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', log],
    detached: true,
  });
  const banner = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`dev printed no banner in 60 s:\n${out}`)), 60_000);
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (/^\s*export /m.test(out)) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    child.on('exit', (code) => reject(new Error(`dev exited with ${code}:\n${out}`)));
  });
  child.stdout!.on('data', () => {});
  const admin = /Admin:\s+(\S+) \/ (\S+)/.exec(banner);
  const token = /Admin token:\s+(\S+)/.exec(banner);
  if (!admin || !token) throw new Error(`no admin in the banner:\n${banner}`);

  const api = await request.newContext({ baseURL: url, ignoreHTTPSErrors: true, extraHTTPHeaders: { Authorization: `Bearer ${token[1]}` } });
  // The starter catalog and three ready nodes before any test runs.
  for (let i = 0; ; i++) {
    const nodes = await api.get('/api/v1/nodes');
    const cat = await api.get('/api/v1/catalog');
    if (nodes.ok() && cat.ok()) {
      const n = (await nodes.json()).items ?? [];
      const c = (await cat.json()).items ?? [];
      if (n.filter((x: { status: string }) => x.status === 'ready').length >= 3 && c.length > 0) break;
    }
    if (i > 120) throw new Error('the dev cluster never had three ready nodes and a catalog');
    await new Promise((r) => setTimeout(r, 500));
  }
  const user = { name: 'casey', password: 'correct horse battery staple' };
  const created = await api.post('/api/v1/users', { data: { name: user.name, role: 'user' } });
  if (!created.ok()) throw new Error(`creating ${user.name}: ${created.status()} ${await created.text()}`);
  const { id } = await created.json();
  const pw = await api.put(`/api/v1/users/${id}/password`, { data: { password: user.password } });
  if (!pw.ok()) throw new Error(`setting ${user.name}'s password: ${pw.status()} ${await pw.text()}`);

  for (const [role, who] of [['admin', { name: admin[1], password: admin[2] }], ['user', user]] as const) {
    const ctx = await request.newContext({ baseURL: url, ignoreHTTPSErrors: true });
    const res = await ctx.post('/api/v1/login', { data: who });
    if (!res.ok()) throw new Error(`signing ${who.name} in: ${res.status()} ${await res.text()}`);
    await ctx.storageState({ path: path.join(stateDir, `${role}.json`) });
    await ctx.dispose();
  }
  await api.dispose();

  const state: E2EState = { url, pid: child.pid!, dataDir, token: token[1], admin: { name: admin[1], password: admin[2] }, user };
  writeFileSync(path.join(stateDir, 'state.json'), JSON.stringify(state, null, 2));
  child.unref();
  process.env.E2E_URL = url;
}
