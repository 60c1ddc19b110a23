// The typed API client. Its types come from docs/openapi.yaml
// (npm run gen), so a change of the API that the dashboard does not follow
// fails svelte-check and the build.
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './api.gen';

export type Schemas = components['schemas'];
export type App = Schemas['App'];
export type Me = Schemas['Me'];

/** A field the API named in a 400, and what is wrong with it. */
export type FieldErrors = Record<string, string>;

/** An answer of the API that is not a success: its problem document. */
export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly requestId: string;
  /** Fields the detail names ("settings.PORT: above the maximum"), by name. */
  readonly fields: FieldErrors;

  constructor(status: number, body: unknown) {
    const p = (body && typeof body === 'object' ? body : {}) as Partial<Schemas['Problem']>;
    super(p.detail || p.title || `request failed with status ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.type = (p.type ?? '').replace(/^urn:proximity:problem:/, '');
    this.requestId = p.request_id ?? '';
    this.fields = fieldErrors(this.message);
  }
}

/**
 * fieldErrors reads the fields a problem's detail names. The API joins
 * one "field: rule" per field with "; " (settings.NAME for an app's
 * settings).
 */
export function fieldErrors(detail: string): FieldErrors {
  const out: FieldErrors = {};
  for (const part of detail.split('; ')) {
    const m = /^([A-Za-z_][A-Za-z0-9_.[\]]*): (.+)$/s.exec(part.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
}

/** The session's CSRF token: the API wants it on every write. */
export function csrfToken(): string {
  for (const c of document.cookie.split(';')) {
    const [k, v] = c.trim().split('=');
    if (k === 'proximity_csrf') return decodeURIComponent(v ?? '');
  }
  return '';
}

let onUnauthenticated: () => void = () => {};

/** setUnauthenticatedHandler is called on a 401 to any request but sign-in. */
export function setUnauthenticatedHandler(f: () => void) {
  onUnauthenticated = f;
}

const middleware: Middleware = {
  onRequest({ request }) {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      request.headers.set('X-CSRF-Token', csrfToken());
    }
    return request;
  },
  onResponse({ request, response }) {
    if (response.status === 401 && !new URL(request.url).pathname.startsWith('/api/v1/login')) {
      onUnauthenticated();
    }
    return response;
  },
};

export const client = createClient<paths>({
  baseUrl: globalThis.location?.origin ?? 'http://localhost',
  credentials: 'same-origin',
});
client.use(middleware);

/**
 * ok unwraps an openapi-fetch result: the data, or an ApiError.
 *
 *   const app = await ok(client.GET('/api/v1/apps/{id}', { params: { path: { id } } }));
 */
export async function ok<T>(p: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await p;
  if (!response.ok) throw new ApiError(response.status, error);
  return data as T;
}

/** message is what to show a person for any error. */
export function message(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
