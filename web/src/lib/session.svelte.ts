// Who is signed in: the API's /api/v1/me, loaded at start and after sign-in.
import { client, csrfToken, ok, setUnauthenticatedHandler, type Me } from './api';
import { here, navigate } from './router.svelte';

class Session {
  me = $state<Me | null>(null);
  loaded = $state(false);
  get admin(): boolean {
    return this.me?.role === 'admin';
  }
}

export const session = new Session();

/** load asks the API who the session cookie belongs to. */
export async function loadSession(): Promise<void> {
  // Without the session's CSRF cookie (it lives as long as the session)
  // nobody is signed in: no request, and no 401 in the console.
  if (!csrfToken()) {
    session.me = null;
    session.loaded = true;
    return;
  }
  try {
    session.me = await ok(client.GET('/api/v1/me'));
  } catch {
    session.me = null;
  } finally {
    session.loaded = true;
  }
}

/** signOut ends the session on every server and shows the sign-in page. */
export async function signOut(): Promise<void> {
  try {
    await ok(client.POST('/api/v1/logout'));
  } finally {
    session.me = null;
    navigate('/login');
  }
}

// A 401 means the session ended (expired, revoked, signed out elsewhere):
// back to the sign-in page, and back here after it.
setUnauthenticatedHandler(() => {
  if (!session.me) return;
  session.me = null;
  if (here.path !== '/login') navigate(`/login?next=${encodeURIComponent(here.path + here.search)}`);
});
