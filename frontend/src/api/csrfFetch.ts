// fetch for the console: same-origin cookies, the CSRF token on unsafe requests, one
// retry with a fresh token when Assay says the token expired or is not valid
// (docs/decisions/0008-csrf-tokens-expire.md), and a signal when the session is gone.

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);
const RETRYABLE = new Set(['token-expired', 'token-invalid', 'token-missing', 'token-malformed']);
export const CSRF_ROUTE = '/v1/auth/csrf-token';

type Fetch = (input: Request) => Promise<Response>;

export interface CsrfFetchOptions {
  fetch?: Fetch;
  /** Called when a request that carried the session answers 401. */
  onUnauthorized?: (request: Request) => void;
}

export interface CsrfFetch {
  (input: Request): Promise<Response>;
  setToken(token: string | null): void;
  getToken(): string | null;
  /** Fetch a fresh token for the current session (null when there is none). */
  refresh(): Promise<string | null>;
}

export function createCsrfFetch(options: CsrfFetchOptions = {}): CsrfFetch {
  const base: Fetch = options.fetch ?? ((input) => globalThis.fetch(input));
  let token: string | null = null;
  let pending: Promise<string | null> | null = null;

  async function refresh(): Promise<string | null> {
    pending ??= (async () => {
      try {
        const answer = await base(
          new Request(new URL(CSRF_ROUTE, location.origin), {
            credentials: 'same-origin',
            headers: { Accept: 'application/json' },
          }),
        );
        if (!answer.ok) return null;
        const body = (await answer.json()) as { csrf_token?: string };
        token = body.csrf_token ?? null;
        return token;
      } finally {
        pending = null;
      }
    })();
    return pending;
  }

  async function send(request: Request, csrf: string | null): Promise<Response> {
    const headers = new Headers(request.headers);
    if (csrf) headers.set('X-CSRF-Token', csrf);
    return base(new Request(request, { headers, credentials: 'same-origin' }));
  }

  async function csrfReason(response: Response): Promise<string | null> {
    if (response.status !== 403) return null;
    try {
      const body = (await response.clone().json()) as { reason?: unknown };
      return typeof body.reason === 'string' ? body.reason : null;
    } catch {
      return null;
    }
  }

  const csrfFetch = (async (request: Request) => {
    const unsafe = !SAFE.has(request.method.toUpperCase());
    // Kept to send again: a body can be read only once.
    const copy = unsafe ? request.clone() : null;
    // A token being fetched (after a reload) is worth waiting for: no refused first write.
    if (unsafe && pending) await pending;
    let response = await send(request, unsafe ? token : null);
    if (copy) {
      const reason = await csrfReason(response);
      if (reason && RETRYABLE.has(reason)) {
        const fresh = await refresh();
        if (fresh) response = await send(copy, fresh);
      }
    }
    if (response.status === 401) options.onUnauthorized?.(request);
    return response;
  }) as CsrfFetch;
  csrfFetch.setToken = (value) => {
    token = value;
  };
  csrfFetch.getToken = () => token;
  csrfFetch.refresh = refresh;
  return csrfFetch;
}
