import { describe, expect, it, vi } from 'vitest';
import { createCsrfFetch } from './csrfFetch';

function problem(status: number, reason?: string): Response {
  return new Response(
    JSON.stringify({ type: 'urn:assay:problem:forbidden', title: 'x', status, reason }),
    { status, headers: { 'Content-Type': 'application/problem+json' } },
  );
}

const ok = () =>
  new Response('{}', { status: 200, headers: { 'Content-Type': 'application/json' } });

function post(body = '{"a":1}') {
  return new Request('http://localhost/v1/models/m/predict', { method: 'POST', body });
}

describe('createCsrfFetch', () => {
  it('sends the token on unsafe requests only', async () => {
    const seen: Request[] = [];
    const fetch = createCsrfFetch({ fetch: async (r) => (seen.push(r), ok()) });
    fetch.setToken('123.abc');
    await fetch(new Request('http://localhost/v1/me'));
    await fetch(post());
    expect(seen[0]?.headers.get('X-CSRF-Token')).toBeNull();
    expect(seen[1]?.headers.get('X-CSRF-Token')).toBe('123.abc');
    expect(seen[1]?.credentials).toBe('same-origin');
  });

  it('fetches a fresh token and retries once when the token expired', async () => {
    const seen: Request[] = [];
    const answers = [
      problem(403, 'token-expired'),
      new Response(JSON.stringify({ csrf_token: '999.fresh', expires_in: 43200 }), { status: 200 }),
      ok(),
    ];
    const fetch = createCsrfFetch({
      fetch: async (r) => {
        seen.push(r);
        return answers.shift() ?? ok();
      },
    });
    fetch.setToken('1.old');
    const response = await fetch(post('{"record":{"x":1}}'));
    expect(response.status).toBe(200);
    expect(seen.map((r) => `${r.method} ${new URL(r.url).pathname}`)).toEqual([
      'POST /v1/models/m/predict',
      'GET /v1/auth/csrf-token',
      'POST /v1/models/m/predict',
    ]);
    expect(seen[2]?.headers.get('X-CSRF-Token')).toBe('999.fresh');
    expect(await seen[2]?.text()).toBe('{"record":{"x":1}}');
    expect(fetch.getToken()).toBe('999.fresh');
  });

  it('retries only once', async () => {
    const base = vi.fn(async (r: Request) =>
      new URL(r.url).pathname === '/v1/auth/csrf-token'
        ? new Response(JSON.stringify({ csrf_token: '2.x' }), { status: 200 })
        : problem(403, 'token-invalid'),
    );
    const fetch = createCsrfFetch({ fetch: base });
    const response = await fetch(post());
    expect(response.status).toBe(403);
    expect(base).toHaveBeenCalledTimes(3);
  });

  it('does not retry other 403s', async () => {
    const base = vi.fn(async () => problem(403));
    const fetch = createCsrfFetch({ fetch: base });
    expect((await fetch(post())).status).toBe(403);
    expect(base).toHaveBeenCalledTimes(1);
  });

  it('reports a 401 as an ended session', async () => {
    const onUnauthorized = vi.fn();
    const fetch = createCsrfFetch({ fetch: async () => problem(401), onUnauthorized });
    await fetch(new Request('http://localhost/v1/models'));
    expect(onUnauthorized).toHaveBeenCalledOnce();
  });
});

describe('a token being fetched', () => {
  it('is awaited by the next unsafe request', async () => {
    const seen: Request[] = [];
    let release: (r: Response) => void = () => undefined;
    const fetch = createCsrfFetch({
      fetch: (r) => {
        seen.push(r);
        if (new URL(r.url).pathname === '/v1/auth/csrf-token') {
          return new Promise<Response>((resolve) => {
            release = resolve;
          });
        }
        return Promise.resolve(ok());
      },
    });
    const refreshing = fetch.refresh();
    const writing = fetch(post());
    await Promise.resolve();
    release(new Response(JSON.stringify({ csrf_token: '5.t' }), { status: 200 }));
    await refreshing;
    await writing;
    expect(seen[1]?.headers.get('X-CSRF-Token')).toBe('5.t');
  });
});
