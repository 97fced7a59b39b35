// The typed API client (openapi-fetch over the generated `paths`), its CSRF-aware fetch,
// and `call`, which turns an answer into its data or an ApiError carrying the problem.
import createClient from 'openapi-fetch';
import type { components, paths } from './schema';
import { createCsrfFetch } from './csrfFetch';
import { ApiError, isProblem } from './problem';

export type Schemas = components['schemas'];

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();

/** Subscribe to "a signed-in request answered 401" (the session ended). */
export function onSessionEnded(listener: Listener): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

export const csrfFetch = createCsrfFetch({
  onUnauthorized: (request) => {
    // Sign-in, MFA and the emailed-link routes answer 401 for wrong secrets: not an
    // ended session.
    const path = new URL(request.url).pathname;
    if (path.startsWith('/v1/auth/') && path !== '/v1/auth/csrf-token') return;
    unauthorizedListeners.forEach((listener) => listener());
  },
});

export const api = createClient<paths>({
  baseUrl: typeof location === 'undefined' ? 'http://localhost' : location.origin,
  fetch: csrfFetch,
  credentials: 'same-origin',
  headers: { Accept: 'application/json, application/problem+json' },
});

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The data of an answer, or throw an ApiError with its problem document. */
export async function call<T>(pending: Promise<Answer<T>>): Promise<T> {
  let answer: Answer<T>;
  try {
    answer = await pending;
  } catch {
    throw new ApiError({ type: 'urn:assay:problem:network', title: 'Network error', status: 0 });
  }
  const { data, error, response } = answer;
  if (!response.ok) {
    if (isProblem(error)) throw new ApiError(error as never);
    throw new ApiError({
      type: 'about:blank',
      title: response.statusText || 'Error',
      status: response.status,
    });
  }
  return data as T;
}
