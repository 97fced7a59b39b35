import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App, makeQueryClient } from '../App';
import { csrfFetch } from '../api/client';
import i18n from '../i18n';

type Handler = (request: Request) => Response | Promise<Response>;

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), {
    status,
    headers: {
      'Content-Type': status >= 400 ? 'application/problem+json' : 'application/json',
    },
  });

const unauthorized = () =>
  json({ type: 'urn:assay:problem:unauthorized', title: 'Unauthorized', status: 401 }, 401);

function me(scope: string) {
  return {
    id: '00000000-0000-0000-0000-000000000001',
    email: 'ada@example.com',
    display_name: 'Ada',
    org_id: '00000000-0000-0000-0000-000000000002',
    permissions: ['models:read', 'members:read'],
    mfa_enabled: true,
    is_platform_admin: false,
    scope,
  };
}

function serve(routes: Record<string, Handler>) {
  const calls: Request[] = [];
  vi.stubGlobal(
    'fetch',
    vi.fn(async (input: Request) => {
      calls.push(input);
      const url = new URL(input.url);
      const handler = routes[`${input.method} ${url.pathname}`];
      return handler
        ? handler(input)
        : json({ type: 'about:blank', title: 'nf', status: 404 }, 404);
    }),
  );
  return calls;
}

beforeEach(() => {
  history.replaceState(null, '', '/console/models');
  csrfFetch.setToken(null);
});
afterEach(() => {
  vi.unstubAllGlobals();
  void i18n.changeLanguage('en');
});

describe('signing in', () => {
  it('goes through the MFA step to the page that was asked for, keeping the CSRF token', async () => {
    let signedIn = false;
    const calls = serve({
      'GET /v1/me': () => (signedIn ? json(me('full')) : unauthorized()),
      'POST /v1/auth/session': () =>
        json({ mfa_required: true, challenge: 'ch-1', expires_in: 300 }),
      'POST /v1/auth/mfa': async (request) => {
        const body = (await request.json()) as { code: string; session: string };
        if (body.code !== '123456' || body.session !== 'console') return unauthorized();
        signedIn = true;
        return json({ csrf_token: '1.tok', org_id: null, scope: 'full' });
      },
      'GET /v1/models': () => json([]),
      'GET /v1/org': () => json({ name: 'Acme' }),
    });
    const user = userEvent.setup();
    render(<App queryClient={makeQueryClient()} />);

    await screen.findByRole('heading', { name: 'Sign in' });
    await user.type(screen.getByLabelText('Email'), 'ada@example.com');
    await user.type(screen.getByLabelText('Password'), 'a long enough passphrase');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));

    await screen.findByRole('heading', { name: 'Two-step verification' });
    await user.type(screen.getByLabelText('Verification code'), '123456');
    await user.click(screen.getByRole('button', { name: 'Verify' }));

    await screen.findByRole('heading', { name: 'Models' });
    expect(await screen.findByText('Organisation: Acme')).toBeInTheDocument();
    expect(location.pathname).toBe('/console/models');
    expect(csrfFetch.getToken()).toBe('1.tok');
    const login = calls.find((c) => new URL(c.url).pathname === '/v1/auth/session');
    expect(login?.credentials).toBe('same-origin');
  });

  it('sends a one-time password sign-in to the password change first', async () => {
    let scope = 'password_change';
    serve({
      'GET /v1/me': () => json(me(scope)),
      'POST /v1/me/password': async (request) => {
        expect(request.headers.get('X-CSRF-Token')).toBe('2.tok');
        scope = 'full';
        return json({ csrf_token: '3.tok', org_id: null, scope: 'full' });
      },
      'GET /v1/auth/csrf-token': () => json({ csrf_token: '2.tok', expires_in: 43200 }),
      'GET /v1/models': () => json([]),
      'GET /v1/org': () => json({ name: 'Acme' }),
    });
    const user = userEvent.setup();
    render(<App queryClient={makeQueryClient()} />);

    await screen.findByRole('heading', { name: 'Change your password' });
    await user.type(screen.getByLabelText('Current password'), 'one-time-password');
    await user.type(screen.getByLabelText('New password'), 'correct horse battery staple');
    await user.type(screen.getByLabelText('Confirm new password'), 'correct horse battery staple');
    await user.click(screen.getByRole('button', { name: 'Change password' }));

    await screen.findByRole('heading', { name: 'Models' });
    expect(csrfFetch.getToken()).toBe('3.tok');
  });

  it('shows the problem detail and the field error when sign-in is refused', async () => {
    serve({
      'GET /v1/me': unauthorized,
      'POST /v1/auth/session': () =>
        json(
          {
            type: 'urn:assay:problem:validation-failed',
            title: 'Request validation failed',
            status: 422,
            detail: 'Invalid input in body.email.',
            errors: [{ field: 'body.email', message: 'value is not a valid email address' }],
          },
          422,
        ),
    });
    const user = userEvent.setup();
    render(<App queryClient={makeQueryClient()} />);
    await screen.findByRole('heading', { name: 'Sign in' });
    await user.type(screen.getByLabelText('Email'), 'nope');
    await user.type(screen.getByLabelText('Password'), 'x');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('Invalid input in body.email.');
    expect(screen.getByLabelText('Email')).toHaveAccessibleDescription(
      'value is not a valid email address',
    );
  });
});

describe('the locale switch', () => {
  it('translates the page and sets the lang attribute', async () => {
    serve({ 'GET /v1/me': unauthorized });
    const user = userEvent.setup();
    render(<App queryClient={makeQueryClient()} />);
    await screen.findByRole('heading', { name: 'Sign in' });
    await user.selectOptions(screen.getByRole('combobox', { name: 'Language' }), 'fr');
    expect(await screen.findByRole('heading', { name: 'Connexion' })).toBeInTheDocument();
    expect(document.documentElement.lang).toBe('fr');
  });
});
